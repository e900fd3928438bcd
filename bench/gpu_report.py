#!/usr/bin/env python3
"""The table of bench/gpu.sh: tokens/s per GPU, MFU and peak memory of each run, dtune against the
transformers + peft peer, and their ratios; also written as JSON.

  python3 bench/gpu_report.py --runs WORK/runs.jsonl --json OUT/gpu_bench.json [--env WORK/env.json]

runs.jsonl holds one object per run, written by gpu.sh: config, model, side (dtune | peer),
status, wall_s, run_dir, data, model_dir, kind, micro_batch, accum, pack_length, warmup, steps,
peak_tflops, gpu_mem_mib (peak nvidia-smi memory.used during the run over the level before it;
null on CPU). Per run the timed window is optimizer steps warmup+1 .. warmup+steps (fewer if the
run was stopped). Both sides are scored from the same numbers: their step times (dtune's
metrics.jsonl step_s, the peer's step_s) and the tokens and model FLOPs of each step, counted here
from the HDF5 file and the model's config.json with dtune's batching and dtune's formula
(4N per non-padding token + 6 * layers * heads * head_dim * n^2 per row of n tokens; N = the base
parameters but the input embedding, as include/dtune/train/flops.h counts them). MFU = FLOP/s over --peak-tflops (989 = H100/H200
dense bf16/fp16 by the datasheet, what dtune assumes by the GPU's name).
"""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_make import weight_shapes  # noqa: E402
from gpu_peer import load_rows, matmul_params, model_flops, plan_steps, row_lengths  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--env", default="", help="JSON of the machine and versions, copied into --json")
    return ap.parse_args(argv)


def read_jsonl(path):
    if not os.path.isfile(path):
        return []
    out = []
    for line in open(path):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut by a kill
    return out


def step_counts(run):
    """[(tokens, flops)] per optimizer step of the run's plan, and N."""
    cfg = json.load(open(os.path.join(run["model_dir"], "config.json")))
    n_params = matmul_params(sum(math.prod(shape) for _, shape, _ in weight_shapes(cfg)), cfg["vocab_size"],
                             cfg["hidden_size"], bool(cfg.get("tie_word_embeddings", False)))
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    rows = load_rows(run["data"])
    steps = plan_steps(rows, run["kind"], run["micro_batch"], run["accum"], run["pack_length"],
                       run["warmup"] + run["steps"])
    out = []
    for micro in steps:
        lengths = [n for seqs in micro for n in row_lengths(rows, seqs, run["pack_length"])]
        out.append((sum(lengths), model_flops(lengths, n_params, cfg["num_hidden_layers"],
                                               cfg["num_attention_heads"], head_dim)))
    return out, n_params


def score(run, dtune_mem):
    """Adds tokens_per_s, mfu, timed_steps, first_loss, memory fields to run (in place).
    dtune_mem: what dtune's metrics peak_mem_gib is, "cuda_allocator" or "rss" (carried MANIFEST)."""
    recs = [r for r in read_jsonl(os.path.join(run["run_dir"], "metrics.jsonl" if run["side"] == "dtune"
                                               else "steps.jsonl"))]
    train = [r for r in recs if r.get("kind") == "train"]
    run["steps_done"] = len(train)
    run["first_loss"] = train[0]["loss"] if train else None
    timed = train[run["warmup"]:run["warmup"] + run["steps"]]
    run["timed_steps"] = len(timed)
    if timed:
        counts, run["n_params"] = step_counts(run)
        secs = sum(r["step_s"] for r in timed)
        idx = [r["step"] - 1 for r in timed]
        tokens = sum(counts[i][0] for i in idx)
        flops = sum(counts[i][1] for i in idx)
        run["step_s_mean"] = secs / len(timed)
        run["tokens_per_s"] = tokens / secs
        run["tflops"] = flops / secs / 1e12
        run["mfu"] = run["tflops"] / run["peak_tflops"]
        if run["side"] == "peer":  # the peer counted its own; they must agree with the plan
            own = sum(r["tokens"] for r in timed)
            run["count_check"] = "ok" if own == tokens else f"peer counted {own} tokens, plan {tokens}"
        if run["side"] == "dtune" and all("mfu" in r for r in timed):  # time-weighted means
            run["dtune_reported_mfu"] = sum(r["mfu"] * r["step_s"] for r in timed) / secs
            run["dtune_reported_tokens_per_s"] = sum(r["tokens_per_s"] * r["step_s"] for r in timed) / secs
    # Memory: the process's own allocator peak where it reports one, else RSS (CPU).
    if run["side"] == "peer":
        summ = [r for r in recs if r.get("kind") == "summary"]
        if summ:
            run["alloc_peak_gib"] = summ[-1].get("max_memory_allocated_gib")
            run["reserved_peak_gib"] = summ[-1].get("max_memory_reserved_gib")
            run["rss_peak_gib"] = summ[-1].get("peak_rss_gib")
        setup = [r for r in recs if r.get("kind") == "setup"]
        if setup:
            run["peer_setup"] = setup[-1]
    elif train:
        peak = max(r.get("peak_mem_gib", 0) for r in train)
        if run.get("gpu_mem_mib") is not None and dtune_mem == "cuda_allocator":
            run["alloc_peak_gib"] = peak  # = the peer's torch.cuda.max_memory_allocated
        else:
            run["rss_peak_gib"] = peak
    run["gpu_mem_gib"] = run["gpu_mem_mib"] / 1024 if run.get("gpu_mem_mib") is not None else None
    return run


def fmt(x, spec, missing="-"):
    return missing if x is None else format(x, spec)


def main(argv=None):
    args = parse_args(argv)
    env = json.load(open(args.env)) if args.env and os.path.isfile(args.env) else {}
    runs = [score(r, env.get("carried", {}).get("peak_mem_gib", "rss")) for r in read_jsonl(args.runs)]
    dry = env.get("dry_run", False)
    gpu = any(r.get("gpu_mem_mib") is not None for r in runs)

    mem_head = "nvsmi GiB" if gpu else "RSS GiB"
    print(f"\n{'CPU DRY RUN (tiny shapes, fp32: plumbing only, not GPU numbers)' if dry else 'GPU benchmark'}"
          f"; timed steps after warm-up; MFU over {runs[0]['peak_tflops'] if runs else '-'} TFLOP/s")
    head = (f"{'config':<8}{'model':<11}{'side':<7}{'status':<9}{'steps':>7}{'tok/s/GPU':>11}{'MFU %':>7}"
            f"{mem_head:>10}{'alloc GiB':>10}{'loss@1':>9}{'s/step':>8}")
    print(head)
    print("-" * len(head))
    for r in runs:
        mem = r.get("gpu_mem_gib") if gpu else r.get("rss_peak_gib")
        print(f"{r['config']:<8}{r['model']:<11}{r['side']:<7}{r['status']:<9}"
              f"{str(r['timed_steps']) + '/' + str(r['steps']):>7}{fmt(r.get('tokens_per_s'), '.0f'):>11}"
              f"{fmt(r['mfu'] * 100 if r.get('mfu') is not None else None, '.1f'):>7}{fmt(mem, '.2f'):>10}"
              f"{fmt(r.get('alloc_peak_gib'), '.2f'):>10}{fmt(r.get('first_loss'), '.4f'):>9}"
              f"{fmt(r.get('step_s_mean'), '.3f'):>8}")
    print(f"steps: timed/asked; tok/s/GPU: non-padding tokens of the timed steps over their summed step "
          f"times; {mem_head}: " + ("peak nvidia-smi memory.used during the run minus before it (the "
          "whole process: CUDA context, allocator cache)" if gpu else "peak resident memory of the process")
          + "; alloc GiB: peak bytes held by torch's CUDA caching allocator (peer: max_memory_allocated; "
          "dtune: metrics peak_mem_gib); loss@1: first optimizer step's loss (LoRA B = 0, so both sides "
          "compute the base model's loss on the same tokens: they must agree)\n")
    pairs = {}
    for r in runs:
        pairs.setdefault((r["config"], r["model"]), {})[r["side"]] = r
    ratios = []
    for (config, model), sides in pairs.items():
        d, p = sides.get("dtune"), sides.get("peer")
        if not d or not p:
            continue
        line = {"config": config, "model": model}
        if d.get("tokens_per_s") and p.get("tokens_per_s"):
            line["tokens_per_s_dtune_over_peer"] = d["tokens_per_s"] / p["tokens_per_s"]
        mem_key = "gpu_mem_gib" if gpu else "rss_peak_gib"
        if d.get(mem_key) and p.get(mem_key):
            line["memory_dtune_over_peer"] = d[mem_key] / p[mem_key]
        if d.get("alloc_peak_gib") and p.get("alloc_peak_gib"):
            line["alloc_dtune_over_peer"] = d["alloc_peak_gib"] / p["alloc_peak_gib"]
        if d.get("first_loss") is not None and p.get("first_loss") is not None:
            line["first_loss_diff"] = d["first_loss"] - p["first_loss"]
        ratios.append(line)
        print(f"{config} {model}: tokens/s dtune/peer {fmt(line.get('tokens_per_s_dtune_over_peer'), '.2f')}x, "
              f"peak memory ({mem_head}) dtune/peer {fmt(line.get('memory_dtune_over_peer'), '.2f')}, "
              f"alloc dtune/peer {fmt(line.get('alloc_dtune_over_peer'), '.2f')}, "
              f"step-1 loss dtune - peer {fmt(line.get('first_loss_diff'), '+.2e')}")
    for r in runs:
        if r.get("count_check", "ok") != "ok":
            print(f"WARNING {r['config']} {r['model']} peer: {r['count_check']}")
        if r.get("dtune_reported_mfu") is not None:
            print(f"{r['config']} {r['model']} dtune's own metrics.jsonl: mfu {100 * r['dtune_reported_mfu']:.1f}%, "
                  f"tokens_per_s {r['dtune_reported_tokens_per_s']:.0f} (timed steps, weighted by step_s)")
    with open(args.json, "w") as f:
        json.dump({"env": env, "runs": runs, "ratios": ratios}, f, indent=2)
    print(f"\nresults: {args.json}")


if __name__ == "__main__":
    main()
