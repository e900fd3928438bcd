#!/usr/bin/env python3
"""Writes the tiny random HF model folders the model/LoRA tests load (tests/fixtures/model/<name>/).

Usage: .venv/bin/python scripts/gen_model_fixtures.py [--out tests/fixtures/model]
Deterministic (fixed seeds); each folder is config.json + model.safetensors (fp32, < 1 MB).
Weights are drawn wider than HF's init (std 0.15, norm weights around 1, non-zero biases) so
logits are O(1) and parity tests are not trivially satisfied by near-zero outputs.
"""
import argparse
import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

COMMON = dict(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-5, initializer_range=0.15, bos_token_id=1, eos_token_id=2)

MODELS = {
    # Llama, untied head, default RoPE.
    "tiny_llama": (LlamaConfig, LlamaForCausalLM,
                   dict(tie_word_embeddings=False, rope_theta=10000.0)),
    # Llama 3.1-style RoPE scaling (small original context so every band is exercised), tied,
    # head_dim (32) != hidden_size / heads (16).
    "tiny_llama3": (LlamaConfig, LlamaForCausalLM,
                    dict(tie_word_embeddings=True, head_dim=32, rope_theta=500000.0,
                         rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                           high_freq_factor=4.0,
                                           original_max_position_embeddings=64))),
    # Qwen2 (q/k/v biases), tied and untied.
    "tiny_qwen2_tied": (Qwen2Config, Qwen2ForCausalLM,
                        dict(tie_word_embeddings=True, rope_theta=1000000.0)),
    "tiny_qwen2": (Qwen2Config, Qwen2ForCausalLM,
                   dict(tie_word_embeddings=False, rope_theta=1000000.0)),
}


def build(name, out_dir, seed):
    config_cls, model_cls, extra = MODELS[name]
    torch.manual_seed(seed)
    config = config_cls(**COMMON, **extra)
    model = model_cls(config).float().eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif pname.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
    path = os.path.join(out_dir, name)
    model.save_pretrained(path, safe_serialization=True)
    print("wrote", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "model"))
    args = ap.parse_args()
    for i, name in enumerate(MODELS):
        build(name, args.out, seed=1000 + i)


if __name__ == "__main__":
    main()
