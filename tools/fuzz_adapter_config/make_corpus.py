#!/usr/bin/env python3
"""Writes fuzz_adapter_config's seed corpus: adapter_config.json files as peft writes them
(LoraConfig.save_pretrained from the venv's peft), one per form load_peft_adapter reads or
refuses: a target list, a regex, "all-linear", rank_pattern / alpha_pattern, rsLoRA,
layers_to_transform, and the refused DoRA, modules_to_save and bias="all". tests/fixtures holds
no adapter folder (the tests make theirs with peft at test time), so these are the real files.
Run from the repository root with the project venv:

  .venv/bin/python tools/fuzz_adapter_config/make_corpus.py
"""
import os
import shutil
import tempfile

from peft import LoraConfig

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"
FORMS = {
    "list": dict(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    "regex": dict(r=4, lora_alpha=8, target_modules=r".*\.(q_proj|v_proj)"),
    "all_linear": dict(r=16, lora_alpha=32, target_modules="all-linear"),
    "patterns": dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                     rank_pattern={"down_proj": 4, r"layers\.1\.self_attn\.q_proj": 2},
                     alpha_pattern={"down_proj": 8}),
    "rslora": dict(r=64, lora_alpha=16, use_rslora=True, target_modules=["q_proj", "v_proj"]),
    "layers": dict(r=8, lora_alpha=16, target_modules=["q_proj"], layers_to_transform=[0, 2], layers_pattern="layers"),
    "dora": dict(r=8, lora_alpha=16, target_modules=["q_proj"], use_dora=True),
    "modules_to_save": dict(r=8, lora_alpha=16, target_modules=["q_proj"], modules_to_save=["lm_head"]),
    "bias_all": dict(r=8, lora_alpha=16, target_modules=["q_proj"], bias="all"),
}


def main():
    out = os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    for name, kw in FORMS.items():
        with tempfile.TemporaryDirectory() as tmp:
            LoraConfig(task_type="CAUSAL_LM", base_model_name_or_path=BASE, **kw).save_pretrained(tmp)
            shutil.copy(os.path.join(tmp, "adapter_config.json"), os.path.join(out, name + ".json"))
    print(f"{len(FORMS)} adapter_config.json files in {out}")


if __name__ == "__main__":
    main()
