#!/usr/bin/env python3
"""Oracle fixtures for the data tests (dtune pretokenize): token ids from the PyPI `tokenizers`
library for data/medical_sample.json rendered with the prompt templates.

Usage (from the repo root, with the project venv):
    .venv/bin/python scripts/gen_data_fixtures.py
Writes tests/fixtures/data/medical_sample_<tokenizer>_<template>.json, each:
    {"tokenizer": ..., "template": ..., "eos_id": int, "bos_id": int|null,
     "rows": [{"prompt_ids": [...], "completion_ids": [...], "text": prompt+completion,
               "decoded": decode(prompt_ids+completion_ids+[eos], skip_special_tokens=True)}]}
The C++ side appends eos and compares ids exactly (tokenization is deterministic: tolerance 0).
"""
import json
import os
import sys

from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "data")

# Must match src/data/prompt_template.cpp presets; the prompt ends where {@completion} stands.
TEMPLATES = {
    "recipe": ("Please reason step by step:\n\nQuestion: {Question}\n\nLet's solve this step by step:\n",
               "{Complex_CoT}\n\nFinal Answer: {Response}"),
    "r1-chat": ("<\uff5cbegin\u2581of\u2581sentence\uff5c><\uff5cUser\uff5c>{Question}<\uff5cAssistant\uff5c><think>\n",
                "{Complex_CoT}\n</think>\n\n{Response}"),
}

# (tokenizer folder under tests/fixtures/tokenizers, template, number of sample rows)
CASES = [("llama3_1", "recipe", 40), ("deepseek_v3", "r1-chat", 6), ("llama3_1", "r1-chat", 6)]


def special_id(folder, key):
    with open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    tok = cfg.get(key)
    if isinstance(tok, dict):
        tok = tok.get("content")
    return tok


def render(part, row):
    return part.format(**row)  # sample text holds no braces


def main():
    with open(os.path.join(ROOT, "data", "medical_sample.json"), encoding="utf-8") as f:
        rows = json.load(f)
    os.makedirs(OUT_DIR, exist_ok=True)
    for tok_name, template, n in CASES:
        folder = os.path.join(ROOT, "tests", "fixtures", "tokenizers", tok_name)
        tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        bos = special_id(folder, "bos_token")
        eos = special_id(folder, "eos_token")
        bos_id = tok.token_to_id(bos) if bos else None
        eos_id = tok.token_to_id(eos)
        out_rows = []
        for row in rows[:n]:
            prompt = render(TEMPLATES[template][0], row)
            completion = render(TEMPLATES[template][1], row)
            # --add-bos auto: post-processor on the prompt, a doubled BOS collapsed to one.
            p = tok.encode(prompt, add_special_tokens=True).ids
            if bos_id is not None and len(p) >= 2 and p[0] == bos_id and p[1] == bos_id:
                p = p[1:]
            c = tok.encode(completion, add_special_tokens=False).ids
            out_rows.append({"prompt_ids": p, "completion_ids": c, "text": prompt + completion,
                             "decoded": tok.decode(p + c + [eos_id], skip_special_tokens=True)})
        path = os.path.join(OUT_DIR, f"medical_sample_{tok_name}_{template}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"tokenizer": tok_name, "template": template, "eos_id": eos_id,
                       "bos_id": bos_id, "rows": out_rows}, f, ensure_ascii=False)
            f.write("\n")
        print(f"wrote {os.path.relpath(path, ROOT)}: {len(out_rows)} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
