#!/usr/bin/env python3
"""CPU LoRA fine-tuning step: dtune's decoder vs transformers + peft, side by side.

Usage: .venv/bin/python bench/model_cpu_bench.py [--model models/SmolLM2-135M-Instruct]
       [--binary build/bin/dtune_model_bench] [--seq 512] [--batch 1] [--steps 5]
       [--threads 2] [--rank 8] [--prompt-frac 0.5] [--rounds 2] [--dtype fp32|bf16]
       [--checkpointing [--checkpoint-every N]]

One step = forward + loss (completion-only: the first prompt-frac of each row is -100) +
backward into LoRA A/B on q,k,v,o_proj (dropout 0), same input ids (seed 0) on both sides.
--dtype: the base weights and activations on both sides (transformers: from_pretrained(dtype=);
peft then keeps its adapter in fp32, as dtune does); fp32 by default. Each side runs in its own process so that peak RSS (VmHWM / ru_maxrss) is its own.
Times are of the fastest step over --rounds alternating runs (robust on a shared machine).
Prints per-token times, the speed-up (transformers time / dtune time) and both losses.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def run_hf(args):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, {"fp32": "float32", "bf16": "bfloat16"}[args.dtype]),
                                                 attn_implementation="sdpa")
    model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                             task_type="CAUSAL_LM"))
    if args.checkpointing:  # as TRL/Trainer's gradient_checkpointing=True: every layer
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    torch.manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (args.batch, args.seq), dtype=torch.int64)
    labels = ids.clone()
    labels[:, : int(args.prompt_frac * args.seq)] = -100
    total, fastest = 0.0, float("inf")
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        out = model(input_ids=ids, labels=labels)
        t1 = time.perf_counter()
        out.loss.backward()
        model.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if step >= args.warmup:
            total += dt
            if dt < fastest:
                forward_s = t1 - t0
            fastest = min(fastest, dt)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "transformers+peft", "seq": args.seq, "batch": args.batch,
                      "threads": torch.get_num_threads(), "step_s": total / args.steps,
                      "min_step_s": fastest, "forward_s": forward_s,
                      "ms_per_token": 1e3 * fastest / (args.batch * args.seq),
                      "loss": float(out.loss), "peak_rss_mib": rss}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "bin", "dtune_model_bench"))
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--prompt-frac", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--checkpointing", action="store_true",
                    help="gradient checkpointing on both sides (transformers: every layer)")
    ap.add_argument("--checkpoint-every", type=int, default=1,
                    help="with --checkpointing, dtune recomputes every Nth layer (1 = all, as transformers)")
    ap.add_argument("--hf-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hf_worker:
        run_hf(args)
        return

    common = ["--seq", str(args.seq), "--batch", str(args.batch), "--steps", str(args.steps),
              "--warmup", str(args.warmup), "--threads", str(args.threads), "--rank", str(args.rank),
              "--prompt-frac", str(args.prompt_frac)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))

    def run(cmd):
        out = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    # Alternate the two sides --rounds times and keep each side's fastest round, so a busy
    # (shared) machine disturbs both alike.
    ours, hf = None, None
    for _ in range(args.rounds):
        o = run([args.binary, args.model] + common + ["--bf16", "1" if args.dtype == "bf16" else "0",
                 "--checkpointing", "1" if args.checkpointing else "0", "--checkpoint-every", str(args.checkpoint_every)])
        h = run([sys.executable, __file__, "--hf-worker", "--model", args.model, "--dtype", args.dtype] + common +
                (["--checkpointing"] if args.checkpointing else []))
        ours = o if ours is None or o["ms_per_token"] < ours["ms_per_token"] else ours
        hf = h if hf is None or h["ms_per_token"] < hf["ms_per_token"] else hf
    for r in (ours, hf):
        print(f"{r['impl']:>18}: {r['ms_per_token']:.3f} ms/token (fastest step)  "
              f"{r['step_s']:.3f} s/step mean  forward+loss {r.get('forward_s', float('nan')):.3f} s  "
              f"loss {r['loss']:.5f}  peak RSS {r['peak_rss_mib']:.0f} MiB  ({r['threads']} threads)")
    print(f"speed-up (transformers / dtune): {hf['ms_per_token'] / ours['ms_per_token']:.2f}x")


if __name__ == "__main__":
    main()
