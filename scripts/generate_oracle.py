#!/usr/bin/env python3
"""Reference outputs for dtune's generate tests, computed with transformers (the oracle).

  processors --out F   crafted logits run through transformers' logits processors and seeded
                       torch.multinomial draws -> JSON (tests/fixtures/generate/processors.json)
  chat --out F         apply_chat_template(add_generation_prompt=True) for the chat templates
                       dtune recognises and one it must reject -> JSON (tests/fixtures/generate/)
  generate --model DIR --out DIR
                       a random non-zero PEFT LoRA adapter saved to OUT/adapter, and greedy
                       generate(do_sample=False) token ids for a few prompts, one at a time and
                       batched (left padding), with and without the adapter -> OUT/greedy.json;
                       seeded sampled runs with knobs left to transformers' resolution
                       (generation_config.json, then its defaults), one on OUT/gen_model, a copy of
                       the model whose generation_config.json sets its own sampling knobs.
                       Idempotent: returns at once when OUT/greedy.json is up to date.

JSON cannot hold -inf, so every non-finite float is written as null (it is always -inf here).
"""
import argparse
import json
import math
import os
import sys

kGenerateStamp = "5"  # bump when the generate output changes
kSampledPrompt = 2     # index into kPrompts of the sampled runs (tests/generate/generator_test.cpp reads it)
# 5, 6 and 19 tokens, so the batch is left-padded. Greedy, the base model and the adapter model
# stop by EOS after 29 new tokens on the first and run all 64 on the other two; a prompt that
# stops early checks little of the decode (generator_test asserts a floor).
kPrompts = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village at the edge of a great forest, there lived",
]
kChatPrompt = "What is 2 + 2?"


def floats(t):
    return [[None if not math.isfinite(v) else v for v in row] for row in t.tolist()]


def write_json(path, obj, indent=1):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False)
    os.replace(tmp, path)


def processors(args):
    import torch
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

    inf = float("inf")
    small = torch.tensor([
        [2.0, -1.0, 0.0, 3.5, -inf, 1.0, 1.0, -2.5],   # negatives, zero, -inf, a tie
        [0.5, 0.5, 0.5, 0.5, 0.25, 0.25, -3.0, 8.0],   # many ties
        [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0],  # all negative
    ], dtype=torch.float32)
    # exact probabilities 1/2, 1/4, 1/8, 1/16, 1/16: cumulative sums land on top_p edges
    dyadic = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.0625, 0.0625]], dtype=torch.float32))
    gen = torch.Generator().manual_seed(7)
    wide = torch.randn(4, 64, generator=gen, dtype=torch.float32) * 3
    # seen ids: -1 = left padding (ignored), duplicates count once
    small_seen = [[-1, -1, 0, 1, 1, 4], [3, 3, 3, 6, 7, 0], [-1, 2, 5, 7, 7, 7]]
    wide_seen = torch.randint(0, 64, (4, 10), generator=gen)
    wide_seen[1, :3] = -1
    wide_seen = wide_seen.tolist()

    def hf_seen(seen, vocab):
        ids = torch.tensor(seen)
        pads = (ids < 0).sum(1)
        return ids.clamp(min=0), pads

    cases = []

    inputs = {"small": small, "dyadic": dyadic, "wide": wide}

    def add(name, kind, logits, out, **params):
        key = next(k for k, v in inputs.items() if v is logits)
        cases.append({"name": name, "kind": kind, "logits": key, "expected": floats(out), **params})

    for penalty in (1.15, 0.8, 2.0):
        for name, lg, seen in (("small", small, small_seen), ("wide", wide, wide_seen)):
            ids, pads = hf_seen(seen, lg.shape[1])
            p = RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=pads)
            add(f"repetition_{name}_{penalty}", "repetition_penalty", lg, p(ids, lg.clone()),
                seen=seen, penalty=penalty)
    for t in (0.6, 1.7):
        add(f"temperature_{t}", "temperature", small, TemperatureLogitsWarper(t)(None, small.clone()),
            temperature=t)
    for k in (1, 2, 3, 8, 50):
        for name, lg in (("small", small), ("wide", wide)):
            add(f"top_k_{name}_{k}", "top_k", lg, TopKLogitsWarper(k)(None, lg.clone()), top_k=k)
    for p in (0.0, 0.3, 0.5, 0.75, 0.875, 0.9375, 0.95, 0.999, 1.0):
        for name, lg in (("small", small), ("dyadic", dyadic), ("wide", wide)):
            add(f"top_p_{name}_{p}", "top_p", lg, TopPLogitsWarper(p)(None, lg.clone()), top_p=p)

    # The whole pipeline as generate() builds it, then seeded multinomial draws.
    def pipeline(lg, seen, penalty, temperature, top_k, top_p):
        ids, pads = hf_seen(seen, lg.shape[1])
        s = lg.clone()
        if penalty != 1.0:
            s = RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=pads)(ids, s)
        if temperature == 0:
            return s
        if temperature != 1.0:
            s = TemperatureLogitsWarper(temperature)(ids, s)
        if top_k != 0:
            s = TopKLogitsWarper(top_k)(ids, s)
        if top_p < 1.0:
            s = TopPLogitsWarper(top_p)(ids, s)
        return s

    for name, (penalty, temperature, top_k, top_p) in {
            "recipe": (1.15, 0.6, 0, 0.95), "topk": (1.3, 0.9, 5, 1.0),
            "plain": (1.0, 1.0, 0, 1.0), "greedy": (1.15, 0.0, 0, 0.95)}.items():
        out = pipeline(wide, wide_seen, penalty, temperature, top_k, top_p)
        draws = {}
        if temperature > 0:
            for seed in (0, 1, 1234):
                torch.manual_seed(seed)
                draws[str(seed)] = torch.multinomial(out.softmax(-1), 1).squeeze(1).tolist()
        else:
            draws["argmax"] = out.argmax(-1).tolist()
        add(f"pipeline_{name}", "pipeline", wide, out, seen=wide_seen, penalty=penalty,
            temperature=temperature, top_k=top_k, top_p=top_p, draws=draws)
    write_json(args.out, {"torch": torch.__version__, "inputs": {k: floats(v) for k, v in inputs.items()},
                          "cases": cases}, indent=None)
    print(f"generate_oracle: {len(cases)} processor cases -> {args.out}")


def chat(args):
    from transformers import AutoTokenizer
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs = {"smollm2": "models/SmolLM2-135M-Instruct", "qwen3": "tests/fixtures/tokenizers/qwen3",
            "deepseek_v3": "tests/fixtures/tokenizers/deepseek_v3", "llama3_1": "tests/fixtures/tokenizers/llama3_1"}
    out = []
    for name, rel in dirs.items():
        tok = AutoTokenizer.from_pretrained(os.path.join(root, rel))
        text = tok.apply_chat_template([{"role": "user", "content": kChatPrompt}], tokenize=False,
                                       add_generation_prompt=True)
        ids = tok.apply_chat_template([{"role": "user", "content": kChatPrompt}], tokenize=True,
                                      add_generation_prompt=True, return_dict=False)
        out.append({"name": name, "dir": rel, "prompt": kChatPrompt, "text": text, "ids": list(ids),
                    "supported": name != "llama3_1"})
    write_json(args.out, {"cases": out})
    print(f"generate_oracle: {len(out)} chat cases -> {args.out}")


def generate(args):
    stamp = json.dumps({"version": kGenerateStamp, "model": os.path.abspath(args.model),
                        "model_bytes": os.path.getsize(os.path.join(args.model, "model.safetensors")),
                        "new_tokens": args.new_tokens, "prompts": kPrompts})
    result = os.path.join(args.out, "greedy.json")
    if os.path.isfile(result):
        with open(result) as f:
            if json.load(f).get("stamp") == stamp:
                print(f"generate_oracle: {result} up to date")
                return
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)

    tok = AutoTokenizer.from_pretrained(args.model)
    tok.padding_side = "left"
    base = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()

    def run(model):
        single, batch = [], None
        with torch.no_grad():
            for p in kPrompts:
                enc = tok(p, return_tensors="pt")
                out = model.generate(**enc, do_sample=False, max_new_tokens=args.new_tokens,
                                     pad_token_id=tok.pad_token_id)
                single.append(out[0, enc["input_ids"].shape[1]:].tolist())
            enc = tok(kPrompts, return_tensors="pt", padding=True)
            out = model.generate(**enc, do_sample=False, max_new_tokens=args.new_tokens,
                                 pad_token_id=tok.pad_token_id)
            batch = out[:, enc["input_ids"].shape[1]:].tolist()
        return single, batch

    def run_one(model, prompt, seed, **kw):
        enc = tok(prompt, return_tensors="pt")
        torch.manual_seed(seed)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=args.new_tokens, pad_token_id=tok.pad_token_id, **kw)
        return out[0, enc["input_ids"].shape[1]:].tolist()

    base_single, base_batch = run(base)
    # The recipe's knobs: greedy with the repetition penalty, and sampled with a fixed seed
    # (torch.manual_seed seeds the CPU generator that dtune's make_sampling_generator mirrors).
    penalty = [run_one(base, p, 0, do_sample=False, repetition_penalty=1.15) for p in kPrompts[:2]]
    # Sampled from the long story prompt (the first prompt's answer ends after a few tokens).
    sampled = {str(seed): run_one(base, kPrompts[kSampledPrompt], seed, do_sample=True, temperature=0.6, top_p=0.95,
                                  top_k=0, repetition_penalty=1.15) for seed in (0, 1)}
    # Knob resolution (explicit > generation_config.json > transformers' defaults), seeded:
    # "recipe": the recipe's call, top_k not given (SmolLM2's generation_config.json sets no
    # sampling knob, so top_k is transformers' 50); "folder": OUT/gen_model, whose
    # generation_config.json sets do_sample/temperature/top_p/max_new_tokens, with no knob given;
    # "explicit": every knob given, on OUT/gen_model (the file's values lose).
    gen_dir = os.path.join(args.out, "gen_model")
    os.makedirs(gen_dir, exist_ok=True)
    for name in os.listdir(args.model):
        if name != "generation_config.json" and not os.path.exists(os.path.join(gen_dir, name)):
            os.symlink(os.path.abspath(os.path.join(args.model, name)), os.path.join(gen_dir, name))
    with open(os.path.join(args.model, "generation_config.json")) as f:
        gen_cfg = json.load(f)
    gen_cfg.update({"do_sample": True, "temperature": 0.8, "top_p": 0.9, "max_new_tokens": 40})
    write_json(os.path.join(gen_dir, "generation_config.json"), gen_cfg)
    folder_model = AutoModelForCausalLM.from_pretrained(gen_dir, dtype=torch.float32).eval()
    knobs = {
        "recipe": {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "repetition_penalty": 1.15,
                   "max_new_tokens": args.new_tokens},
        "folder": {},
        "explicit": {"do_sample": True, "temperature": 0.7, "top_p": 0.85, "top_k": 30, "repetition_penalty": 1.1,
                     "max_new_tokens": 48},
    }
    resolved = {}
    for name, kw in knobs.items():
        model = base if name == "recipe" else folder_model
        enc = tok(kPrompts[kSampledPrompt], return_tensors="pt")
        torch.manual_seed(3)
        with torch.no_grad():
            out = model.generate(**enc, pad_token_id=tok.pad_token_id, **kw)
        resolved[name] = {"model": "gen_model" if name != "recipe" else "base", "knobs": kw, "seed": 3,
                          "ids": out[0, enc["input_ids"].shape[1]:].tolist()}
    del folder_model
    # A random non-zero adapter: PEFT initialises B to zero, so fill both matrices.
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                     lora_dropout=0.0, task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    model.save_pretrained(os.path.join(args.out, "adapter"))
    lora_single, lora_batch = run(model.eval())
    write_json(result, {
        "stamp": stamp, "new_tokens": args.new_tokens, "prompts": kPrompts,
        "prompt_ids": [tok(p)["input_ids"] for p in kPrompts],
        "base": {"single": base_single, "batch": base_batch},
        "penalty": {"repetition_penalty": 1.15, "single": penalty},
        "sampled": {"prompt": kSampledPrompt, "temperature": 0.6, "top_p": 0.95, "top_k": 0, "repetition_penalty": 1.15,
                    "seeds": sampled},
        "lora": {"single": lora_single, "batch": lora_batch},
        "resolved": resolved,
    })
    print(f"generate_oracle: greedy outputs -> {result}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("processors")
    p.add_argument("--out", required=True)
    p = sub.add_parser("chat")
    p.add_argument("--out", required=True)
    p = sub.add_parser("generate")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()
    {"processors": processors, "chat": chat, "generate": generate}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
