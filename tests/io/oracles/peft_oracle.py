"""Oracle for peft_adapter_test and merge_test (transformers + peft are the reference).

  peft_oracle.py make OUT
      OUT/base_llama     tiny Llama, untied, fp32, sharded (scripts/make_tiny_model.py)
      OUT/base_qwen2     tiny Qwen2, tied, bf16
      OUT/peft_llama     peft LoRA r=4 alpha=8 on all 7 projections, random non-zero B
      OUT/peft_qwen2     peft rsLoRA r=8 alpha=16 on q/k/v_proj
      OUT/<adapter>_ref.safetensors  the adapter's in-memory parameters (names with ".default")
  peft_oracle.py check_adapter BASE ADAPTER OUT.safetensors
      PeftModel.from_pretrained(BASE, ADAPTER); saves its LoRA state dict to OUT, prints the config
  peft_oracle.py make_variants OUT
      OUT/base_llama and one adapter folder per form peft writes (VARIANTS below: layers_to_transform,
      layers_pattern, target_modules as a regex and "all-linear", rank_pattern / alpha_pattern,
      use_rslora, names with ".default" as older saves), random non-zero B; OUT/<name>_logits.safetensors
      holds PeftModel.from_pretrained's fp32 logits on IDS
  peft_oracle.py check_merge BASE ADAPTER MERGED
  peft_oracle.py check_merges BASE ADAPTER MERGED [ADAPTER MERGED ...]
      check_merge for each pair in one process: one JSON line each, in order
      prints max |merged - peft merge_and_unload()| per weight kind and max |logits| difference
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))


def make(out):
    import make_tiny_model
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    make_tiny_model.main(["--arch", "llama", "--untied", "--sharded", "--seed", "1",
                          "--output", os.path.join(out, "base_llama")])
    make_tiny_model.main(["--arch", "qwen2", "--tied", "--dtype", "bfloat16", "--seed", "2",
                          "--output", os.path.join(out, "base_qwen2")])
    specs = {
        "llama": LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM",
                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"]),
        "qwen2": LoraConfig(r=8, lora_alpha=16, use_rslora=True, task_type="CAUSAL_LM",
                            target_modules=["q_proj", "k_proj", "v_proj"]),
    }
    g = torch.Generator().manual_seed(7)
    for arch, cfg in specs.items():
        base = AutoModelForCausalLM.from_pretrained(os.path.join(out, f"base_{arch}"), dtype=torch.float32)
        model = get_peft_model(base, cfg)
        ref = {}
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:  # peft initializes B = 0; make the update non-trivial
                    p.copy_(0.05 * torch.randn(p.shape, generator=g))
                if "lora_" in name:
                    ref[name] = p.detach().float().contiguous().clone()
        model.save_pretrained(os.path.join(out, f"peft_{arch}"))
        save_file(ref, os.path.join(out, f"peft_{arch}_ref.safetensors"))
    print("ok")


IDS = [[3, 17, 42, 9, 100, 7]]

# name -> LoraConfig arguments (lora_dropout 0, CAUSAL_LM)
VARIANTS = {
    "layers": dict(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], layers_to_transform=[0]),
    "layers_pattern": dict(r=2, lora_alpha=4, target_modules=["k_proj", "down_proj"], layers_to_transform=[1],
                           layers_pattern="layers"),
    "regex": dict(r=4, lora_alpha=8, target_modules=r".*\.(k_proj|o_proj)$"),
    "all_linear": dict(r=2, lora_alpha=2, target_modules="all-linear"),
    "patterns": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"],
                     rank_pattern={"v_proj": 2, "model.layers.1.self_attn.q_proj": 6}, alpha_pattern={"up_proj": 3}),
    "rslora_patterns": dict(r=8, lora_alpha=16, use_rslora=True, target_modules=["q_proj", "k_proj", "o_proj"],
                            rank_pattern={"k_proj": 2}, alpha_pattern={"o_proj": 5}),
    "old_default_names": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
}


def make_variants(out):
    import make_tiny_model
    from peft import LoraConfig, PeftModel, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    base_dir = os.path.join(out, "base_llama")
    make_tiny_model.main(["--arch", "llama", "--untied", "--sharded", "--seed", "1", "--output", base_dir])
    g = torch.Generator().manual_seed(11)
    for name, kwargs in VARIANTS.items():
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32),
                               LoraConfig(lora_dropout=0.0, task_type="CAUSAL_LM", **kwargs))
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.copy_(0.05 * torch.randn(p.shape, generator=g))
        folder = os.path.join(out, name)
        model.save_pretrained(folder)
        if name == "old_default_names":  # the names as an in-memory state_dict spells them
            path = os.path.join(folder, "adapter_model.safetensors")
            sd = load_file(path)
            save_file({k.replace(".lora_A.", ".lora_A.default.").replace(".lora_B.", ".lora_B.default."): v
                       for k, v in sd.items()}, path)
        loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32), folder)
        with torch.no_grad():
            logits = loaded(torch.tensor(IDS)).logits[0].float().contiguous()
        save_file({"logits": logits}, os.path.join(out, name + "_logits.safetensors"))
    print("ok")


def check_adapter(base_dir, adapter_dir, out):
    from peft import PeftModel, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir)
    sd = {k: v.float().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(sd, out)
    c = model.peft_config["default"]
    print(json.dumps({"r": c.r, "lora_alpha": c.lora_alpha, "use_rslora": c.use_rslora,
                      "target_modules": sorted(c.target_modules), "peft_type": str(c.peft_type.value),
                      "n_lora_params": sum(1 for n, _ in model.named_parameters() if "lora_" in n)}))


def check_merge(base_dir, adapter_dir, merged_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")  # its own dtype, as dtune's auto
    peft_model = PeftModel.from_pretrained(base, adapter_dir)
    ids = torch.tensor([[3, 17, 42, 9, 100, 7]])
    with torch.no_grad():
        adapter_logits = peft_model.float()(ids).logits
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto"),
                                           adapter_dir)
    ref = peft_model.merge_and_unload().state_dict()
    base_sd = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto").state_dict()
    max_delta = max((ref[k].double() - base_sd[k].double()).abs().max().item() for k in ref)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype="auto")
    got = merged.state_dict()
    merged_dtype = str(next(merged.parameters()).dtype).replace("torch.", "")
    diffs, ulps = {}, {}
    for k, v in ref.items():
        kind = "lora_targets" if any(m in k for m in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                       "up_proj", "down_proj")) and k.endswith("weight") else "other"
        d = (got[k].double() - v.double()).abs()
        diffs[kind] = max(diffs.get(kind, 0.0), d.max().item())
        # Difference in units of the stored dtype's spacing at the value (1.0 = one ulp).
        eps = torch.finfo(v.dtype).eps
        ulps[kind] = max(ulps.get(kind, 0.0), (d / (v.double().abs() * eps).clamp_min(1e-30)).max().item())
    with torch.no_grad():
        merged_logits = merged.float()(ids).logits
    print(json.dumps({"dtype": merged_dtype,
                      "missing": sorted(set(ref) - set(got)), "max_delta": max_delta, "max_abs": diffs, "max_ulps": ulps,
                      "logits_max_abs": (merged_logits - adapter_logits).abs().max().item(),
                      "logits_scale": adapter_logits.abs().max().item()}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2])
    elif cmd == "check_adapter":
        check_adapter(*sys.argv[2:5])
    elif cmd == "make_variants":
        make_variants(sys.argv[2])
    elif cmd == "check_merge":
        check_merge(*sys.argv[2:5])
    elif cmd == "check_merges":
        pairs = sys.argv[3:]
        for i in range(0, len(pairs), 2):
            check_merge(sys.argv[2], pairs[i], pairs[i + 1])
    else:
        sys.exit(f"unknown command {cmd}")
