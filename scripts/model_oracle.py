#!/usr/bin/env python3
"""Reference outputs of transformers + peft for the dtune model/LoRA parity tests.

Usage: .venv/bin/python scripts/model_oracle.py --model DIR --out FILE.safetensors
       [--model DIR2 --out FILE2 ...] [--seed 0] [--batch 2] [--seq 16] [--rank 4] [--alpha 8]

Several models in one call share the Python start-up (~5 s). Writes per model one file (all fp32 / int64, CPU, eval mode, dropout 0):
  input_ids (B, T), labels (B, T) (= input_ids with a per-row prompt set to -100),
  logits (B, T, V) of the base model, loss (HF mean over shifted labels), loss_tokens,
  adapter.<PEFT key> for a LoRA on q,k,v,o,gate,up,down_proj with random non-zero A and B,
  lora_logits (B, T, V), lora_loss (mean), grad.<PEFT key> = d(sum of token CE)/d(tensor).
The C++ tests run it at test time (DTUNE_PYTHON) and read the file back with SafetensorsFile.
"""
import argparse

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def peft_key(name):
    # PEFT's saved adapter keys drop the adapter name.
    return name.replace(".default", "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--out", action="append", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=8.0)
    args = ap.parse_args()
    if len(args.model) != len(args.out):
        ap.error("give one --out per --model")
    for model_dir, out_path in zip(args.model, args.out):
        run_model(model_dir, out_path, args)


def run_model(model_dir, out_path, args):
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 attn_implementation="sdpa").eval()
    V = model.config.vocab_size
    B, T = args.batch, args.seq
    out = {}
    input_ids = torch.randint(3, V, (B, T), dtype=torch.int64)
    labels = input_ids.clone()
    for b in range(B):
        labels[b, : 3 + 4 * b] = -100  # completion-only: a different prompt length per row
    out["input_ids"] = input_ids
    out["labels"] = labels
    count = int((labels[:, 1:] != -100).sum())
    out["loss_tokens"] = torch.tensor([count], dtype=torch.int64)

    with torch.no_grad():
        res = model(input_ids=input_ids, labels=labels)
    out["logits"] = res.logits.float()
    out["loss"] = res.loss.reshape(1).float()

    config = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0,
                        target_modules=TARGETS, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.copy_(0.2 * torch.randn_like(p))
                out["adapter." + peft_key(name)] = p.detach().clone()
    res = peft_model(input_ids=input_ids, labels=labels)
    (res.loss * count).backward()  # gradient of the SUM of token losses
    out["lora_logits"] = res.logits.detach().float()
    out["lora_loss"] = res.loss.detach().reshape(1).float()
    for name, p in peft_model.named_parameters():
        if "lora_" in name:
            out["grad." + peft_key(name)] = p.grad.detach().clone()
    save_file({k: v.contiguous() for k, v in out.items()}, out_path)


if __name__ == "__main__":
    main()
