#!/usr/bin/env python3
"""Reference values for dtune's trainer tests, from transformers and torch (the oracle).

  train_oracle.py schedule KIND TOTAL WARMUP_STEPS WARMUP_RATIO   -> JSON list of per-step LRs
  train_oracle.py adamw OUT.safetensors                           -> params/grads/results of 3 steps
  train_oracle.py eval-loss MODEL ADAPTER DATA.h5                 -> {"base": .., "adapter": ..}
  train_oracle.py load-adapter MODEL ADAPTER                      -> exits 0 when peft loads it
"""
import json
import math
import sys


def schedule(kind, total, warmup_steps, warmup_ratio):
    import torch
    from transformers import get_scheduler

    warmup = warmup_steps if warmup_steps > 0 else math.ceil(total * warmup_ratio)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1e-3)
    sched = get_scheduler(kind if kind != "constant" else "constant_with_warmup", opt,
                          num_warmup_steps=warmup, num_training_steps=total)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    print(json.dumps(lrs))


def adamw(out):
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    n = 1000
    p0 = torch.randn(n, generator=g)
    grads = [torch.randn(n, generator=g) * s for s in (1.0, 0.01, 3.0)]
    p = torch.nn.Parameter(p0.clone())
    opt = torch.optim.AdamW([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, foreach=False)
    tensors = {"p0": p0}
    for i, gr in enumerate(grads):
        p.grad = gr.clone()
        opt.step()
        tensors[f"grad{i}"] = gr
        tensors[f"p{i + 1}"] = p.detach().clone()
    st = opt.state[p]
    tensors["exp_avg"] = st["exp_avg"]
    tensors["exp_avg_sq"] = st["exp_avg_sq"]
    save_file(tensors, out)


def eval_rows(data, group="eval"):
    import h5py
    with h5py.File(data, "r") as f:
        g = f[group]
        tokens, offsets, prompt = g["tokens"][:], g["offsets"][:], g["prompt_lengths"][:]
    return [(tokens[offsets[i]:offsets[i + 1]], int(prompt[i])) for i in range(len(prompt))]


def loss_sum(model, rows):
    """Sum of token cross-entropies over completion tokens, and their count (as dtune counts:
    every position after the prompt predicts its token)."""
    import torch
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, plen in rows:
            x = torch.tensor(ids, dtype=torch.long)[None]
            logits = model(input_ids=x).logits[0].float()
            start = max(plen, 1)
            tgt = x[0, start:]
            logp = torch.log_softmax(logits[start - 1:-1], dim=-1)
            total += float(-logp.gather(1, tgt[:, None]).sum())
            count += tgt.numel()
    return total, count


def eval_loss(model_dir, adapter_dir, data):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    rows = eval_rows(data)
    base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    b_sum, n = loss_sum(base, rows)
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    a_sum, _ = loss_sum(model, rows)
    print(json.dumps({"base": b_sum / n, "adapter": a_sum / n, "tokens": n}))


def base_loss(model_dir, data, group):
    """The base model's mean completion-token loss over a split: the first training step's loss
    (the LoRA B matrices start at zero, so the adapter adds nothing before the first update)."""
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    total, n = loss_sum(base, eval_rows(data, group))
    print(json.dumps({"loss": total / n, "tokens": n}))


def make_adapter(model_dir, out, seed):
    """A PEFT adapter (r=4, alpha 16, q_proj/v_proj) with random A and B, so the LoRA path
    carries signal from the first step; both trainers start from it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.02)
    model.save_pretrained(out)


def train_steps(model_dir, adapter_dir, data, precision, steps, micro, accum, lr, max_grad_norm, scale_init,
                growth_interval):
    """The reference of `dtune train` on one rank with data.shuffle=false, a constant LR, no
    warmup and no dropout: the base in the training dtype (as dtune keeps it), LoRA masters in
    fp32 (peft's autocast_adapter_dtype), micro-batches padded to their longest row, the step's
    loss = completion-token cross-entropy summed over its micro-batches / their token count,
    torch.amp.GradScaler("cpu") for fp16, clip_grad_norm_, torch.optim.AdamW (foreach=False), as
    dtune's defaults set them. Prints per step: loss, loss scale after the step, skipped."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=dtype)
    model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=True)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    assert all(p.dtype == torch.float32 for p in params)
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, foreach=False)
    scaler = torch.amp.GradScaler("cpu", init_scale=scale_init, growth_interval=growth_interval,
                                  enabled=precision == "fp16")
    rows = eval_rows(data, "train")
    pos, out = 0, []
    for _ in range(steps):
        batches = []
        for _ in range(accum):
            batches.append(rows[pos:pos + micro])
            pos += micro
        tokens = sum(len(ids) - max(plen, 1) for b in batches for ids, plen in b)
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for b in batches:
            t = max(len(ids) for ids, _ in b)
            ids = torch.zeros((len(b), t), dtype=torch.long)
            mask = torch.zeros((len(b), t), dtype=torch.long)
            for i, (r, _) in enumerate(b):
                ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
                mask[i, :len(r)] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            loss_sum = logits.new_zeros(())
            for i, (r, plen) in enumerate(b):
                start = max(plen, 1)
                logp = torch.log_softmax(logits[i, start - 1:len(r) - 1], dim=-1)
                loss_sum = loss_sum - logp.gather(1, ids[i, start:len(r), None]).sum()
            total += float(loss_sum)
            scaler.scale(loss_sum / tokens).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        before = scaler.get_scale() if scaler.is_enabled() else 1.0
        scaler.step(opt)
        scaler.update()
        after = scaler.get_scale() if scaler.is_enabled() else 1.0
        out.append({"loss": total / tokens, "loss_scale": after, "skipped": after < before})
    print(json.dumps(out))


def load_adapter(model_dir, adapter_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    PeftModel.from_pretrained(base, adapter_dir)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "schedule":
        schedule(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif cmd == "adamw":
        adamw(sys.argv[2])
    elif cmd == "eval-loss":
        eval_loss(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "base-loss":
        base_loss(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "make-adapter":
        make_adapter(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "train-steps":
        a = sys.argv[2:]
        train_steps(a[0], a[1], a[2], a[3], int(a[4]), int(a[5]), int(a[6]), float(a[7]), float(a[8]), float(a[9]),
                    int(a[10]))
    elif cmd == "load-adapter":
        load_adapter(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")
