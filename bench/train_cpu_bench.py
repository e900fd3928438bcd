#!/usr/bin/env python3
"""CPU LoRA training, end to end: `dtune train` (1 rank) vs a transformers + peft loop, same tokens.

Usage: .venv/bin/python bench/train_cpu_bench.py [--model models/SmolLM2-135M-Instruct]
       [--binary build/bin/dtune] [--input data/medical_sample.json] [--rows 120]
       [--max-length 512] [--threads 2] [--steps 2] [--warmup 1] [--workdir /tmp/dtune_train_bench]

The default run took 6.7 min on 2 shared cores at load 5-7 (dtune 19 s/step, pad-to-longest 28,
the pad-to-L recipe 87: it dominates); --steps 5 takes about 2.5x that.

Data: the --input rows are cycled to --rows rows (default 120: the 40-row sample three times, so
warm-up + timed steps never wrap an epoch), pretokenized once with `dtune pretokenize --max-length L
--eval-fraction 0`. Both sides read that HDF5 file: dtune directly, the peer through h5py (same ids,
same prompt lengths, so the same loss mask), rows in file order (dtune with data.shuffle=false).
Recipe: LoRA r=4, alpha 16, dropout 0.1 on q_proj,v_proj; 2 rows x 4 accumulation per optimizer
step; AdamW lr 1e-4, wd 0.01; linear schedule, warmup 0.03; clip 0.3; fp32; T threads; 1 process.
The loss of a step is the sum of completion-token cross-entropies / completion tokens of the step.
Peers: "recipe" pads every row to L (what the recipe's SFTTrainer setup does); "longest" pads each
micro-batch to its longest row (what dtune does with data.packing=false) -- the fair comparison.
Each side runs in its own process (peak RSS = its own ru_maxrss / `/usr/bin/time -v`). The first
--warmup optimizer steps are excluded from the timings.
"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

from h5_rows import read_train_rows  # bench/ is this script's folder: on sys.path

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models/SmolLM2-135M-Instruct"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/bin/dtune"))
    ap.add_argument("--input", default=os.path.join(ROOT, "data/medical_sample.json"))
    ap.add_argument("--rows", type=int, default=120, help="rows of the benchmark set (input cycled)")
    ap.add_argument("--max-length", type=int, default=512, help="L: pretokenize cut and recipe padding")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed optimizer steps first")
    ap.add_argument("--micro-batch", type=int, default=2)
    ap.add_argument("--accum", type=int, default=4)
    ap.add_argument("--sides", default="dtune,longest,recipe", help="comma list of dtune,longest,recipe")
    ap.add_argument("--workdir", default="/tmp/dtune_train_bench")
    ap.add_argument("--worker", default="", help=argparse.SUPPRESS)  # internal: run one peer variant
    return ap.parse_args(argv)


def load_rows(h5_path):
    """Returns [(ids list, prompt_length)] of /train, in file order, and the pad id."""
    rows, pad_id = read_train_rows(h5_path)
    return [(ids.tolist(), prompt) for ids, prompt in rows], pad_id


def step_rows(rows, args, step):
    """The micro-batches (lists of rows) of optimizer step `step` (0-based), rows in file order."""
    per_step = args.micro_batch * args.accum
    chunk = rows[step * per_step:(step + 1) * per_step]
    return [chunk[i:i + args.micro_batch] for i in range(0, len(chunk), args.micro_batch)]


def count_tokens(rows, args, first_step, n_steps):
    """(non-padding tokens, loss tokens) of the given optimizer steps."""
    real = loss = 0
    for s in range(first_step, first_step + n_steps):
        for mb in step_rows(rows, args, s):
            for ids, p in mb:
                real += len(ids)
                loss += len(ids) - p
    return real, loss


def run_peer(args, variant, h5_path):
    """One peer variant in this process; prints a JSON line with per-step times and peak RSS."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, get_linear_schedule_with_warmup

    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    rows, pad_id = load_rows(h5_path)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, lora_dropout=0.1,
                                             target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    total = args.warmup + args.steps
    sched = get_linear_schedule_with_warmup(opt, math.ceil(0.03 * total), total)

    def collate(mb):
        width = args.max_length if variant == "recipe" else max(len(ids) for ids, _ in mb)
        ids_t = torch.full((len(mb), width), pad_id, dtype=torch.long)
        att = torch.zeros((len(mb), width), dtype=torch.long)
        lab = torch.full((len(mb), width), -100, dtype=torch.long)
        for i, (ids, p) in enumerate(mb):
            n = len(ids)
            ids_t[i, :n] = torch.tensor(ids)
            att[i, :n] = 1
            lab[i, p:n] = torch.tensor(ids[p:])
        return ids_t, att, lab

    times, losses = [], []
    for step in range(total):
        t0 = time.perf_counter()
        micro = [collate(mb) for mb in step_rows(rows, args, step)]
        # Loss tokens after the causal shift (labels[:, 1:]), as transformers' num_items_in_batch.
        n_items = sum(int((lab[:, 1:] != -100).sum()) for _, _, lab in micro)
        loss_sum = 0.0
        for ids_t, att, lab in micro:
            out = model(input_ids=ids_t, attention_mask=att, labels=lab, num_items_in_batch=n_items)
            out.loss.backward()
            loss_sum += float(out.loss.detach())
        torch.nn.utils.clip_grad_norm_(params, 0.3)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        losses.append(loss_sum)
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"step_s": times, "loss": losses, "peak_rss_gib": rss_kib / 2**20}))


def pretokenize(args):
    os.makedirs(args.workdir, exist_ok=True)
    with open(args.input) as f:
        base = json.load(f)
    rows = [base[i % len(base)] for i in range(args.rows)]
    src = os.path.join(args.workdir, f"rows{args.rows}.json")
    with open(src, "w") as f:
        json.dump(rows, f)
    h5 = os.path.join(args.workdir, f"rows{args.rows}_L{args.max_length}.h5")
    cmd = [args.binary, "pretokenize", "--tokenizer", args.model, "--input", src, "--output", h5,
           "--max-length", str(args.max_length), "--eval-fraction", "0", "--no-progress"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return h5, cmd


def time_v_peak_gib(stderr_text):
    for line in stderr_text.splitlines():
        if "Maximum resident set size" in line:
            return int(line.split(":")[-1]) / 2**20
    return float("nan")


def run_dtune(args, h5):
    out = os.path.join(args.workdir, "dtune_run")
    subprocess.run(["rm", "-rf", out], check=True)
    cmd = [args.binary, "train", f"--model.path={args.model}", f"--data.path={h5}",
           f"--data.micro_batch_size={args.micro_batch}", "--data.packing=false", "--data.shuffle=false",
           "--lora.r=4", "--lora.alpha=16", "--lora.dropout=0.1", "--lora.target_modules=q_proj,v_proj",
           "--train.device=cpu", "--train.precision=fp32", "--train.gradient_checkpointing=false",
           f"--train.max_steps={args.warmup + args.steps}", f"--train.gradient_accumulation_steps={args.accum}",
           "--train.learning_rate=1e-4", "--train.weight_decay=0.01", "--train.warmup_ratio=0.03",
           "--train.lr_scheduler=linear", "--train.max_grad_norm=0.3", "--train.eval_every=0",
           f"--train.threads={args.threads}", f"--checkpoint.output_dir={out}", "--checkpoint.save_every=0",
           "--generate.enabled=false", "--log.tensorboard=false", "--log.progress=off"]
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"dtune train failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    steps = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if '"train"' in l]
    return {"step_s": [s["step_s"] for s in steps], "tokens_per_s": [s["tokens_per_s"] for s in steps],
            "loss": [s["loss"] for s in steps], "peak_rss_gib": time_v_peak_gib(p.stderr), "wall_s": wall,
            "cmd": cmd}


def run_peer_process(args, variant, h5):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--model", args.model,
           "--threads", str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--max-length", str(args.max_length), "--micro-batch", str(args.micro_batch),
           "--accum", str(args.accum), "--h5", h5]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"peer {variant} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["wall_s"] = wall
    return r


def main():
    if "--worker" in sys.argv:  # internal entry: the h5 path rides along as --h5
        i = sys.argv.index("--h5")
        h5 = sys.argv[i + 1]
        args = parse_args(sys.argv[1:i] + sys.argv[i + 2:])
        run_peer(args, args.worker, h5)
        return
    args = parse_args()
    h5, pre_cmd = pretokenize(args)
    rows, _ = load_rows(h5)
    need = (args.warmup + args.steps) * args.micro_batch * args.accum
    if len(rows) < need:
        sys.exit(f"--rows {args.rows} gives {len(rows)} train rows; warm-up + timed steps need {need}")
    real, loss_tok = count_tokens(rows, args, args.warmup, args.steps)
    print(f"load average (1/5/15 min) at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("pretokenize:", " ".join(pre_cmd))

    results = {}
    for side in args.sides.split(","):
        r = run_dtune(args, h5) if side == "dtune" else run_peer_process(args, side, h5)
        results[side] = r
        if side == "dtune":
            print("dtune:", " ".join(r["cmd"]))
        print(f"  {side}: done, wall {r['wall_s']:.1f} s, load {os.getloadavg()[0]:.2f}", flush=True)

    per_step = args.micro_batch * args.accum
    names = {"dtune": "dtune train", "longest": "peft, pad to longest", "recipe": f"peft, pad to L={args.max_length}"}
    print(f"\n{args.steps} timed optimizer steps (after {args.warmup} warm-up), {per_step} rows/step, "
          f"{real} non-pad tokens, {loss_tok} loss tokens, T={args.threads}")
    print(f"{'side':<24}{'s/step':>8}{'real tok/s':>11}{'loss tok/s':>11}{'epoch 40 rows':>15}"
          f"{'25k rows (h)':>13}{'peak RSS GiB':>13}{'wall s':>8}{'first loss':>11}")
    summary = {}
    for side, r in results.items():
        st = r["step_s"][args.warmup:]
        mean = sum(st) / len(st)
        summary[side] = mean
        print(f"{names[side]:<24}{mean:>8.2f}{real / sum(st):>11.0f}{loss_tok / sum(st):>11.0f}"
              f"{math.ceil(40 / per_step) * mean:>14.1f}s{math.ceil(25000 / per_step) * mean / 3600:>13.2f}"
              f"{r['peak_rss_gib']:>13.2f}{r['wall_s']:>8.1f}{r['loss'][0]:>11.4f}")
    if "dtune" in results:
        d = results["dtune"]
        print(f"dtune metrics.jsonl tokens_per_s (timed steps, mean): "
              f"{sum(d['tokens_per_s'][args.warmup:]) / args.steps:.0f}")
        for side in ("longest", "recipe"):
            if side in summary:
                print(f"time per step, {names[side]} / dtune: {summary[side] / summary['dtune']:.2f}x; "
                      f"peak RSS dtune / peer: {d['peak_rss_gib'] / results[side]['peak_rss_gib']:.2f}")
    print(f"load average (1/5/15 min) at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
