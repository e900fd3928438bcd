#!/usr/bin/env python3
"""Makes bench/gpu.sh's inputs: random-weight Hugging Face model folders with a real model's
shapes, and synthetic pre-tokenized HDF5 files in dtune's format (docs/DATA_FORMAT.md).

  python3 bench/gpu_make.py model --config bench/model-configs/deepseek-r1-distill-llama-8b.json \
      --output /tmp/llama8b [--dtype bfloat16] [--device cuda] [--seed 0] [--tiny [--vocab 128256]]
  python3 bench/gpu_make.py data --kind padded --rows 104 --seq 1024 --vocab 128256 --output a.h5
  python3 bench/gpu_make.py data --kind packed --rows 104 --seq 2048 --vocab 128256 --output b.h5

model: config.json is the given one (--tiny: hidden 64, intermediate 128, 2 layers, 4 heads,
2 KV heads, vocab 512 or --vocab, everything else kept: rope scaling, biases, tying; --vocab with
the model's own size lets a tiny model use the real tokenizer, for a generation test). Every weight matrix and
bias is N(0, 0.02), norm weights are 1, drawn on --device from a generator seeded per tensor
(--seed + its index), so the same command gives the same bytes; saved as safetensors shards of at
most --shard-gib (model-0000k-of-0000n.safetensors + model.safetensors.index.json), or one
model.safetensors when it fits. No tokenizer: `dtune train` with generate.enabled=false and the
peer read only ids. A folder whose .complete stamp matches the arguments is reused.

data, kind padded: --rows rows of exactly --seq ids (no padding anywhere), prompt lengths uniform
in [seq/8, seq/2). kind packed: --rows groups of 2 to 6 rows whose lengths sum to exactly --seq,
so dtune's in-order greedy packing (data.packing, pack_length = seq) fills every packed sequence
with no padding; prompt lengths uniform in [1, len/2). Ids uniform in [0, vocab). /eval is empty.
"""
import argparse
import json
import os
import shutil
import time

import numpy as np


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    m = sub.add_parser("model")
    m.add_argument("--config", required=True, help="a Hugging Face config.json")
    m.add_argument("--output", required=True)
    m.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16")
    m.add_argument("--device", default="cuda")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--shard-gib", type=float, default=5.0)
    m.add_argument("--tiny", action="store_true", help="same architecture, tiny sizes (CPU dry run)")
    m.add_argument("--vocab", type=int, default=512, help="--tiny only: the vocabulary size")
    d = sub.add_parser("data")
    d.add_argument("--kind", choices=["padded", "packed"], required=True)
    d.add_argument("--rows", type=int, required=True, help="padded: rows; packed: packed sequences")
    d.add_argument("--seq", type=int, required=True, help="padded: row length; packed: pack length")
    d.add_argument("--vocab", type=int, required=True)
    d.add_argument("--seed", type=int, default=1234)
    d.add_argument("--output", required=True)
    return ap.parse_args(argv)


def model_config(args):
    with open(args.config) as f:
        cfg = json.load(f)
    if args.tiny:
        cfg.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, vocab_size=args.vocab, bos_token_id=1, eos_token_id=2)
        cfg.pop("head_dim", None)
        if "max_window_layers" in cfg:
            cfg["max_window_layers"] = 2
    cfg["torch_dtype"] = args.dtype
    return cfg


def weight_shapes(cfg):
    """[(name, shape, kind)] in the Hugging Face Llama/Qwen2 naming; kind: matrix | bias | norm."""
    h, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nq, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or h // nq
    qwen2 = cfg["model_type"] == "qwen2"
    qkv_bias = qwen2 or cfg.get("attention_bias", False)
    o_bias = not qwen2 and cfg.get("attention_bias", False)
    mlp_bias = cfg.get("mlp_bias", False)
    out = [("model.embed_tokens.weight", (v, h), "matrix")]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        out += [(p + "input_layernorm.weight", (h,), "norm"), (p + "post_attention_layernorm.weight", (h,), "norm")]
        for name, rows, cols, bias in (("self_attn.q_proj", nq * hd, h, qkv_bias),
                                       ("self_attn.k_proj", nkv * hd, h, qkv_bias),
                                       ("self_attn.v_proj", nkv * hd, h, qkv_bias),
                                       ("self_attn.o_proj", h, nq * hd, o_bias),
                                       ("mlp.gate_proj", i, h, mlp_bias), ("mlp.up_proj", i, h, mlp_bias),
                                       ("mlp.down_proj", h, i, mlp_bias)):
            out.append((p + name + ".weight", (rows, cols), "matrix"))
            if bias:
                out.append((p + name + ".bias", (rows,), "bias"))
    out.append(("model.norm.weight", (h,), "norm"))
    if not cfg.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", (v, h), "matrix"))
    return out


def make_model(args):
    import torch
    from safetensors.torch import save_file

    cfg = model_config(args)
    stamp = json.dumps({"config": cfg, "seed": args.seed, "shard_gib": args.shard_gib}, sort_keys=True)
    out = os.path.abspath(args.output)
    stamp_path = os.path.join(out, ".complete")
    if os.path.isfile(stamp_path) and open(stamp_path).read() == stamp:
        print(f"gpu_make model: {out} already made, reused")
        return
    t0 = time.perf_counter()
    tmp = f"{out}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    dtype = getattr(torch, args.dtype)
    shapes = weight_shapes(cfg)
    elem = torch.tensor([], dtype=dtype).element_size()
    limit = int(args.shard_gib * 2**30)
    shards, cur, cur_bytes = [], [], 0  # group tensors into shards of at most `limit` bytes
    for name, shape, kind in shapes:
        nbytes = int(np.prod(shape)) * elem
        if cur and cur_bytes + nbytes > limit:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append((name, shape, kind))
        cur_bytes += nbytes
    shards.append(cur)
    n_shards = len(shards)
    weight_map, total, n_params, index = {}, 0, 0, 0
    for k, shard in enumerate(shards):
        fname = "model.safetensors" if n_shards == 1 else f"model-{k + 1:05d}-of-{n_shards:05d}.safetensors"
        tensors = {}
        for name, shape, kind in shard:
            if kind == "norm":
                t = torch.ones(shape, dtype=dtype, device=args.device)
            else:
                g = torch.Generator(device=args.device).manual_seed(args.seed * 1_000_003 + index)
                t = torch.randn(shape, generator=g, dtype=torch.float32, device=args.device).mul_(0.02).to(dtype)
            tensors[name] = t.cpu()
            weight_map[name] = fname
            total += t.numel() * elem
            n_params += t.numel()
            index += 1
        save_file(tensors, os.path.join(tmp, fname), metadata={"format": "pt"})
        del tensors
    if n_shards > 1:
        with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(tmp, ".complete"), "w") as f:
        f.write(stamp)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    print(f"gpu_make model: {out}: {cfg['model_type']}, {n_params / 1e6:.2f}M params, {args.dtype}, "
          f"{n_shards} shard(s), {total / 2**30:.2f} GiB in {time.perf_counter() - t0:.1f} s")


def make_rows(args):
    """[(ids int32 array, prompt_length)]."""
    rng = np.random.default_rng(args.seed)
    rows = []
    if args.kind == "padded":
        for _ in range(args.rows):
            prompt = int(rng.integers(max(args.seq // 8, 1), max(args.seq // 2, 2)))
            rows.append((rng.integers(0, args.vocab, args.seq, dtype=np.int32), prompt))
        return rows
    min_len = 8
    for _ in range(args.rows):
        k = int(rng.integers(2, 7))
        k = max(1, min(k, args.seq // min_len))
        # k lengths >= min_len summing to seq: sorted cut points in the free room.
        cuts = np.sort(rng.integers(0, args.seq - k * min_len + 1, k - 1))
        lengths = np.diff(np.concatenate([[0], cuts, [args.seq - k * min_len]])) + min_len
        for n in lengths:
            prompt = int(rng.integers(1, max(int(n) // 2, 2)))
            rows.append((rng.integers(0, args.vocab, int(n), dtype=np.int32), prompt))
    return rows


def write_split(f, name, rows):
    g = f.create_group(name)
    tokens = np.concatenate([r for r, _ in rows]) if rows else np.zeros(0, np.int32)
    offsets = np.zeros(len(rows) + 1, np.int64)
    offsets[1:] = np.cumsum([len(r) for r, _ in rows]) if rows else []
    prompts = np.array([p for _, p in rows], np.int32)
    for dname, arr, chunk in (("tokens", tokens, 65536), ("offsets", offsets, 8192), ("prompt_lengths", prompts, 8192)):
        g.create_dataset(dname, data=arr, chunks=(max(1, min(chunk, len(arr))),), shuffle=True,
                         compression="gzip", compression_opts=4, maxshape=(None,))


def make_data(args):
    import h5py

    rows = make_rows(args)
    tmp = f"{args.output}.tmp-{os.getpid()}"
    with h5py.File(tmp, "w") as f:
        write_split(f, "train", rows)
        write_split(f, "eval", [])
        attrs = {"format_version": 1, "dtune_version": "bench/gpu_make.py", "tokenizer_path": "(synthetic)",
                 "tokenizer_sha256": "", "vocab_size": args.vocab, "bos_id": -1, "eos_id": -1, "pad_id": 0,
                 "template_name": f"synthetic-{args.kind}", "template_text": "", "add_bos": "no",
                 "source_path": "(random ids)", "source_sha256": "", "num_train_rows": len(rows),
                 "num_eval_rows": 0, "num_skipped_rows": 0, "num_truncated_rows": 0, "num_dropped_rows": 0,
                 "max_length": args.seq, "seed": args.seed, "eval_fraction": 0.0}
        for k, v in attrs.items():
            f.attrs[k] = np.int64(v) if isinstance(v, int) else np.float64(v) if isinstance(v, float) else v
    os.replace(tmp, args.output)
    n_tok = sum(len(r) for r, _ in rows)
    print(f"gpu_make data: {args.output}: {args.kind}, {len(rows)} rows, {n_tok} tokens, "
          f"{sum(len(r) - p for r, p in rows)} loss tokens")


def main(argv=None):
    args = parse_args(argv)
    make_model(args) if args.what == "model" else make_data(args)


if __name__ == "__main__":
    main()
