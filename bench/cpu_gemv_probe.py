#!/usr/bin/env python3
"""Where one fp32 decode token's time can go on this CPU: streaming-read bandwidth over the
model's bytes, and the one-row matrix products of SmolLM2-135M's shapes in the kernel forms
transformers and dtune use (F.linear with the (out, in) weight) against a pre-transposed weight.

  .venv/bin/python bench/cpu_gemv_probe.py [--threads 2]

Prints ms per call (mean of 30 after 3 warm-ups) and the GB/s each reaches over the weight bytes.
"""
import argparse
import time

import torch


def mean_ms(f, n=30):
    for _ in range(3):
        f()
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(135_000_000)  # SmolLM2-135M's parameters in fp32: 540 MB
    ms = mean_ms(lambda: x.sum(), n=5)
    print(f"streaming read (sum) over 540 MB: {ms:.1f} ms = {0.54 / ms * 1e3:.1f} GB/s ({args.threads} threads)")
    print(f"{'weight (out x in)':<20}{'MB':>7}{'F.linear ms':>13}{'GB/s':>7}{'x @ W^T pre-transposed ms':>27}{'GB/s':>7}")
    for out_f, in_f in [(49152, 576), (1536, 576), (576, 1536), (576, 576), (192, 576)]:
        w = torch.randn(out_f, in_f)
        wt = w.t().contiguous()
        v = torch.randn(1, 1, in_f)
        mb = out_f * in_f * 4 / 1e6
        a = mean_ms(lambda: torch.nn.functional.linear(v, w))
        b = mean_ms(lambda: torch.matmul(v, wt))
        print(f"{f'{out_f} x {in_f}':<20}{mb:>7.1f}{a:>13.3f}{mb / a:>7.1f}{b:>27.3f}{mb / b:>7.1f}")


if __name__ == "__main__":
    main()
