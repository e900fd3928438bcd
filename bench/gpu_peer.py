#!/usr/bin/env python3
"""The transformers + peft side of bench/gpu.sh: the configuration `dtune train` runs, as a plain
PyTorch loop (what HF Trainer does per step, without its data loader and logging), on the same
HDF5 file (gpu_make.py data), in the same batches, timed per optimizer step.

  python3 bench/gpu_peer.py --model DIR --data FILE.h5 --kind padded|packed --out steps.jsonl
      [--precision fp16|bf16|fp32] [--lora-r 4] [--lora-alpha 16] [--lora-dropout 0.1]
      [--targets q_proj,v_proj] [--micro-batch 2] [--accum 4] [--pack-length 2048]
      [--grad-ckpt 1] [--warmup 3] [--steps 10] [--device cuda] [--threads 0]

Same as dtune (docs/TRAINING.md): rows in file order (dtune: data.shuffle=false); padded batches
are padded to the longest row (gpu_make's padded rows all have one length: no padding), packed
batches are dtune's in-order greedy packing into --pack-length sequences, positions restarting per
row, attention kept within a row (transformers detects the packing from position_ids, or, where
it cannot, gets the block-diagonal mask itself); labels -100 on prompt tokens and on each row's
first token; the loss of a step is the sum of token cross-entropies over all its micro-batches
divided by its loss tokens (num_items_in_batch); base weights frozen in the training dtype, LoRA
A/B in fp32 (peft's autocast_adapter_dtype), autocast to fp16/bf16, GradScaler for fp16 (start
65536, growth interval 2000), clip_grad_norm_ 0.3, AdamW lr 1e-4 wd 0.01 (fused on CUDA), linear
schedule, warmup ceil(0.03 * steps); gradient checkpointing non-reentrant; SDPA attention.

Writes one JSON line per optimizer step to --out as it goes (so a run stopped by its time limit
still has its steps), a "setup" line after loading and a "summary" line at the end (peak memory:
torch.cuda.max_memory_allocated / max_memory_reserved on CUDA, ru_maxrss on CPU).
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np

from h5_rows import read_train_rows  # bench/ is this script's folder: on sys.path


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--kind", choices=["padded", "packed"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--precision", choices=["fp16", "bf16", "fp32"], default="fp16")
    ap.add_argument("--lora-r", type=int, default=4)
    ap.add_argument("--lora-alpha", type=float, default=16)
    ap.add_argument("--lora-dropout", type=float, default=0.1)
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--micro-batch", type=int, default=2)
    ap.add_argument("--accum", type=int, default=4)
    ap.add_argument("--pack-length", type=int, default=2048)
    ap.add_argument("--grad-ckpt", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads; 0 = torch's default")
    ap.add_argument("--lr", type=float, default=1e-4)
    return ap.parse_args(argv)


# ---- Batches: shared with gpu_report.py, which counts tokens and FLOPs per step from them ------

def load_rows(h5_path):
    """[(ids int32 array, prompt_length)] of /train, in file order."""
    return read_train_rows(h5_path)[0]


def plan_micro_batches(rows, kind, micro_batch, pack_length):
    """Micro-batches of one epoch as dtune's Batcher forms them: lists of sequences, each a list
    of row indices (padded: one row per sequence)."""
    out = []
    if kind == "padded":
        for i in range(0, len(rows), micro_batch):
            out.append([[r] for r in range(i, min(i + micro_batch, len(rows)))])
        return out
    pos, n = 0, len(rows)
    while pos < n:  # Batcher::take_packed
        seqs, fill = [], 0
        while pos < n:
            length = min(len(rows[pos][0]), pack_length)
            if fill == 0 or fill + length > pack_length:
                if len(seqs) == micro_batch:
                    break
                seqs.append([])
                fill = 0
            fill += length
            seqs[-1].append(pos)
            pos += 1
        out.append(seqs)
    return out


def plan_steps(rows, kind, micro_batch, accum, pack_length, n_steps):
    """The micro-batches of the first n_steps optimizer steps (one epoch must hold them)."""
    micro = plan_micro_batches(rows, kind, micro_batch, pack_length)
    if len(micro) < n_steps * accum:
        sys.exit(f"gpu_peer: the data holds {len(micro)} micro-batches, {n_steps} steps x {accum} need more")
    return [micro[s * accum:(s + 1) * accum] for s in range(n_steps)]


def row_lengths(rows, seqs, pack_length):
    return [min(len(rows[r][0]), pack_length) for seq in seqs for r in seq]


def matmul_params(n_params, vocab_size, hidden_size, tied):
    """dtune's N (include/dtune/train/flops.h): every base parameter but the input embedding (a
    lookup); with tied embeddings the shared matrix counts once, as the LM head."""
    return n_params if tied else n_params - vocab_size * hidden_size


def model_flops(lengths, n_params, layers, heads, head_dim):
    """dtune's MFU numerator (docs/TRAINING.md): 4N per non-padding token (N = matmul_params)
    plus causal attention, 6 * layers * heads * head_dim * n^2 per row of n tokens."""
    return sum(4.0 * n_params * n + 6.0 * layers * heads * head_dim * n * n for n in lengths)


def collate(rows, seqs, kind, pack_length):
    """(input_ids, labels, position_ids, sequence ids) as int64 numpy arrays of shape (B, T)."""
    width = pack_length if kind == "packed" else max(len(rows[s[0]][0]) for s in seqs)
    b = len(seqs)
    ids = np.zeros((b, width), np.int64)
    labels = np.full((b, width), -100, np.int64)
    pos = np.zeros((b, width), np.int64)
    seq_id = np.full((b, width), -1, np.int64)
    for i, seq in enumerate(seqs):
        fill = 0
        for j, r in enumerate(seq):
            toks, prompt = rows[r]
            n = min(len(toks), width)
            ids[i, fill:fill + n] = toks[:n]
            start = max(prompt, 1)
            labels[i, fill + start:fill + n] = toks[start:n]
            pos[i, fill:fill + n] = np.arange(n)
            seq_id[i, fill:fill + n] = j
            fill += n
    return ids, labels, pos, seq_id


# ---- The training loop ---------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(argv)
    import torch
    import transformers
    import peft
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, get_linear_schedule_with_warmup

    t_start = time.perf_counter()
    out = open(args.out, "w", buffering=1)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.precision]

    rows = load_rows(args.data)
    total = args.warmup + args.steps
    steps = plan_steps(rows, args.kind, args.micro_batch, args.accum, args.pack_length, total)

    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype, attn_implementation="sdpa",
                                                 device_map=args.device if cuda else None)
    model.config.use_cache = False
    if args.grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=args.targets.split(","), task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)  # autocast_adapter_dtype=True: A/B in fp32
    model.train()
    load_s = time.perf_counter() - t0
    cfg = model.config
    n_params = matmul_params(sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name),
                             cfg.vocab_size, cfg.hidden_size, bool(getattr(cfg, "tie_word_embeddings", False)))
    params = [p for p in model.parameters() if p.requires_grad]
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads

    # Packed rows: transformers >= 4.5x finds the rows from position_ids when no attention_mask is
    # given (masking_utils.find_packed_sequence_indices); otherwise pass the block-diagonal mask.
    from transformers import masking_utils
    auto_packed = hasattr(masking_utils, "find_packed_sequence_indices")

    # Every step's tensors on the host, pinned, before the clock starts (dtune reads HDF5 inside
    # its step: this favours the peer slightly).
    host_steps = []
    for micro in steps:
        batch = []
        for seqs in micro:
            ids, labels, pos, seq_id = collate(rows, seqs, args.kind, args.pack_length)
            t = [torch.from_numpy(a) for a in (ids, labels, pos, seq_id)]
            batch.append([x.pin_memory() if cuda else x for x in t])
        n_items = sum(int((b[1] != -100).sum()) for b in batch)
        lengths = [n for seqs in micro for n in row_lengths(rows, seqs, args.pack_length)]
        host_steps.append((batch, n_items, lengths))

    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8, fused=cuda)
    sched = get_linear_schedule_with_warmup(opt, math.ceil(0.03 * total), total)
    use_scaler = args.precision == "fp16"
    scaler = torch.amp.GradScaler(args.device, init_scale=65536.0, growth_interval=2000, enabled=use_scaler)

    setup = {"kind": "setup", "n_params": n_params, "lora_params": sum(p.numel() for p in params),
             "load_s": load_s, "layers": cfg.num_hidden_layers, "heads": cfg.num_attention_heads,
             "head_dim": head_dim, "torch": torch.__version__, "transformers": transformers.__version__,
             "peft": peft.__version__, "attn": cfg._attn_implementation, "packed_mask":
             ("position_ids" if auto_packed else "explicit 4-D") if args.kind == "packed" else "causal",
             "device_name": torch.cuda.get_device_name(dev) if cuda else "cpu",
             "mem_after_load_gib": torch.cuda.memory_allocated(dev) / 2**30 if cuda else None}
    out.write(json.dumps(setup) + "\n")
    print(f"gpu_peer: loaded in {load_s:.1f} s: {n_params / 1e6:.1f}M base params, "
          f"{setup['lora_params']} LoRA params, {args.precision}, {setup['packed_mask']} attention", flush=True)

    for step, (batch, n_items, lengths) in enumerate(host_steps):
        t0 = time.perf_counter()
        loss_acc = torch.zeros((), device=dev)
        for ids, labels, pos, seq_id in batch:
            ids, labels, pos = (x.to(dev, non_blocking=True) for x in (ids, labels, pos))
            kwargs = {"input_ids": ids, "labels": labels, "position_ids": pos, "num_items_in_batch": n_items}
            if args.kind == "packed" and not auto_packed:
                s = seq_id.to(dev, non_blocking=True)
                causal = torch.ones(s.shape[1], s.shape[1], dtype=torch.bool, device=dev).tril()
                kwargs["attention_mask"] = ((s[:, :, None] == s[:, None, :]) & causal)[:, None]
            with torch.autocast(dev.type, dtype=dtype, enabled=args.precision != "fp32"):
                loss = model(**kwargs).loss
            scaler.scale(loss).backward()
            loss_acc += loss.detach().float()
        scaler.unscale_(opt)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 0.3)
        scaler.step(opt)
        scaler.update()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss_value = float(loss_acc)  # the step's one host sync, as dtune's loss .item()
        if cuda:
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t0
        rec = {"kind": "train", "step": step + 1, "step_s": dt, "loss": loss_value, "grad_norm": float(grad_norm),
               "loss_scale": float(scaler.get_scale()) if use_scaler else 1.0, "tokens": sum(lengths),
               "flops": model_flops(lengths, n_params, cfg.num_hidden_layers, cfg.num_attention_heads, head_dim)}
        out.write(json.dumps(rec) + "\n")
        print(f"gpu_peer: step {step + 1}/{total} {dt:.3f} s loss {loss_value:.4f}", flush=True)

    summary = {"kind": "summary", "wall_s": time.perf_counter() - t_start,
               "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    if cuda:
        summary["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
        summary["max_memory_reserved_gib"] = torch.cuda.max_memory_reserved(dev) / 2**30
    out.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
