#!/usr/bin/env python3
"""Decode speed with a KV cache, dtune vs transformers generate(), on CPU, same threads.

  .venv/bin/python bench/generate_bench.py [--dtune build/bin/dtune] [--model models/SmolLM2-135M-Instruct]
                                           [--threads 2] [--new-tokens 128] [--repeats 3]

Both run greedy fp32 on one prompt. dtune runs first (`dtune generate --temperature 0
--repetition-penalty 1`); its stderr reports decode tokens and seconds (after the prefill and
first token). transformers then generates exactly as many tokens (min_new_tokens = that
count); its decode time is generate(N) - generate(1), i.e. the same N - 1 decode steps. The best
of --repeats runs is kept for each side. Prints both rates and dtune / transformers (goal >= 2).
"""
import argparse
import os
import re
import subprocess
import sys
import time

kPrompt = "Once upon a time, in a small village at the edge of a great forest, there lived"


def run_dtune(args):
    cmd = [args.dtune, "generate", "--model", args.model, "--prompt", kPrompt, "--temperature", "0",
           "--repetition-penalty", "1", "--max-new-tokens", str(args.new_tokens), "--threads",
           str(args.threads)]
    best = None
    for _ in range(args.repeats):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"generate_bench: dtune failed:\n{r.stderr}")
        m = re.search(r"prefill (\d+) tokens in (\d+) ms; decode (\d+) tokens in ([0-9.e+-]+) s", r.stderr)
        if not m:
            sys.exit(f"generate_bench: no timing line in dtune's stderr:\n{r.stderr}")
        prefill_ms, tokens, seconds = int(m.group(2)), int(m.group(3)), float(m.group(4))
        if best is None or tokens / seconds > best[0]:
            best = (tokens / seconds, tokens, prefill_ms)
    return best


def run_hf(args, new_tokens):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    enc = tok(kPrompt, return_tensors="pt")

    def timed(n):
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, do_sample=False, max_new_tokens=n, min_new_tokens=n,
                                 pad_token_id=tok.pad_token_id)
        assert out.shape[1] - enc["input_ids"].shape[1] == n
        return time.perf_counter() - start

    timed(2)  # warm-up
    best = None
    for _ in range(args.repeats):
        t1, tn = timed(1), timed(new_tokens)
        rate = (new_tokens - 1) / max(tn - t1, 1e-9)
        best = rate if best is None else max(best, rate)
    return best, t1 * 1000


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtune", default=os.path.join(root, "build", "bin", "dtune"))
    ap.add_argument("--model", default=os.path.join(root, "models", "SmolLM2-135M-Instruct"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    d_rate, d_tokens, d_prefill = run_dtune(args)
    h_rate, h_first = run_hf(args, d_tokens + 1)
    print(f"model {os.path.basename(args.model)}, fp32, CPU, {args.threads} threads, "
          f"{d_tokens} decode tokens, best of {args.repeats}")
    print(f"{'':14}{'decode tok/s':>14}{'prefill+1st (ms)':>18}")
    print(f"{'dtune':14}{d_rate:>14.1f}{d_prefill:>18d}")
    print(f"{'transformers':14}{h_rate:>14.1f}{h_first:>18.0f}")
    print(f"ratio dtune / transformers: {d_rate / h_rate:.2f}x")


if __name__ == "__main__":
    main()
