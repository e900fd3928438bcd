#!/usr/bin/env python3
"""One decode step's attention at a long context, as dtune runs it on CPU before and after
issue 22 (item 8): one query token per row against a KV cache of --context tokens, grouped K/V
(n_kv_heads < n_heads), with the boolean mask a cache always passes.

  .venv/bin/python bench/gqa_decode_bench.py [--context 2048] [--threads 2] [--repeats 50]

  expand  what dtune did: scaled_dot_product_attention(q, k, v, mask, enable_gqa=True) on CPU (on
          CUDA it repeat_interleave'd K/V first); ATen expands K/V per query head inside, a copy
          of the whole cache every step and layer
  folded  what dtune does now (src/model/attention.cpp): the group's query heads folded into the
          query length, q (B, n_kv, group, hd) against K/V as stored, mask expanded without a copy

Shapes: SmolLM2-135M (9 heads, 3 KV heads, head_dim 64) and Llama-3.1-8B (32, 8, 128), batch 1,
fp32. Prints the median time per call of each and checks they agree (max abs diff).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def bench(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, context {args.context}, fp32, batch 1")
    for name, heads, kv, hd in (("SmolLM2-135M", 9, 3, 64), ("Llama-3.1-8B", 32, 8, 128)):
        group = heads // kv
        q = torch.randn(1, heads, 1, hd)
        k = torch.randn(1, kv, args.context, hd)
        v = torch.randn(1, kv, args.context, hd)
        mask = torch.ones(1, 1, 1, args.context, dtype=torch.bool)
        expand = lambda: F.scaled_dot_product_attention(q, k, v, mask, enable_gqa=True)
        folded = lambda: F.scaled_dot_product_attention(
            q.reshape(1, kv, group, hd), k, v, mask.expand(1, 1, group, args.context)).reshape(1, heads, 1, hd)
        diff = (expand() - folded()).abs().max().item()
        t_e, t_f = bench(expand, args.repeats), bench(folded, args.repeats)
        print(f"{name:14s} expand {t_e * 1e6:8.1f} us  folded {t_f * 1e6:8.1f} us  "
              f"speed-up {t_e / t_f:5.2f}x  max |diff| {diff:.1e}  (per layer and step)")


if __name__ == "__main__":
    main()
