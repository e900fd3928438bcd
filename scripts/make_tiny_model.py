#!/usr/bin/env python3
"""Builds a tiny random Llama or Qwen2 model as a Hugging Face folder, for tests that need a real
transformers/peft oracle but must run in seconds.

Usage:
  .venv/bin/python scripts/make_tiny_model.py --arch llama --tied --output /tmp/tiny
  .venv/bin/python scripts/make_tiny_model.py --arch qwen2 --untied --dtype bfloat16 --sharded \
      --output /tmp/tiny_qwen --tokenizer models/SmolLM2-135M-Instruct

Shape (defaults): hidden 64, 2 layers, 4 heads, 2 KV heads (GQA), head_dim 16, intermediate 128,
vocab 512 (or the --tokenizer's size; its tokenizer files are copied). Every parameter, biases and
norm weights included, is drawn from N(0, 0.02) (norms: 1 + N(0, 0.1)) with --seed, so parity tests
see non-trivial values everywhere. --rope-scaling llama3 adds a Llama 3.1 rope_scaling block.
--sharded saves with a small max_shard_size, giving model-0000k-of-0000n.safetensors + index.
"""
import argparse
import json
import os
import shutil

import torch

kTokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "chat_template.jinja"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=["llama", "qwen2"], required=True)
    tie = ap.add_mutually_exclusive_group()
    tie.add_argument("--tied", dest="tied", action="store_true", default=True,
                     help="lm_head shares embed_tokens (default)")
    tie.add_argument("--untied", dest="tied", action="store_false")
    ap.add_argument("--output", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    ap.add_argument("--sharded", action="store_true", help="split into several safetensors shards")
    ap.add_argument("--rope-scaling", choices=["none", "llama3"], default="none")
    ap.add_argument("--tokenizer", default="", help="folder whose tokenizer files are copied; "
                    "sets vocab_size to its vocabulary")
    ap.add_argument("--vocab-size", type=int, default=512)
    ap.add_argument("--hidden-size", type=int, default=64)
    ap.add_argument("--intermediate-size", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    return ap.parse_args(argv)


def tokenizer_vocab_size(folder):
    from tokenizers import Tokenizer
    return Tokenizer.from_file(os.path.join(folder, "tokenizer.json")).get_vocab_size(with_added_tokens=True)


def make_config(args, vocab):
    from transformers import LlamaConfig, Qwen2Config
    common = dict(vocab_size=vocab, hidden_size=args.hidden_size,
                  intermediate_size=args.intermediate_size, num_hidden_layers=args.layers,
                  num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
                  max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=args.tied,
                  bos_token_id=1, eos_token_id=2, pad_token_id=2)
    rope = {"rope_type": "default", "rope_theta": 10000.0}
    if args.rope_scaling == "llama3":
        # Small original_max_position so the scaling affects the tiny model's frequencies.
        rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64}
    if args.arch == "llama":
        cfg = LlamaConfig(**common, rope_parameters=rope)
    else:
        if args.rope_scaling != "none":
            raise SystemExit("make_tiny_model: --rope-scaling llama3 is only for --arch llama")
        cfg = Qwen2Config(**common, rope_parameters=rope, use_sliding_window=False)
    cfg.dtype = args.dtype
    return cfg


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if "norm" in name:
                p.copy_(1.0 + 0.1 * noise)
            else:
                p.copy_(0.02 * noise)


def main(argv=None):
    """argv: the command-line arguments (default sys.argv[1:]); tests import and call this."""
    args = parse_args(argv)
    from transformers import AutoModelForCausalLM
    vocab = tokenizer_vocab_size(args.tokenizer) if args.tokenizer else args.vocab_size
    cfg = make_config(args, vocab)
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    randomize(model, args.seed)
    model = model.to(getattr(torch, args.dtype))
    out = os.path.abspath(args.output)
    tmp = f"{out}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        # ~2-3 shards for the default shape in fp32.
        model.save_pretrained(tmp, max_shard_size="100KB" if args.sharded else "10GB")
        if args.tokenizer:
            for n in kTokenizerFiles:
                src = os.path.join(args.tokenizer, n)
                if os.path.isfile(src):
                    shutil.copy(src, os.path.join(tmp, n))
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = sum(p.numel() for p in model.parameters())
    print(f"make_tiny_model: wrote {args.output} ({args.arch}, {'tied' if args.tied else 'untied'}, "
          f"{args.dtype}, {n} params)")


if __name__ == "__main__":
    main()
