#!/usr/bin/env python3
"""Oracle fixture for dtune's added-token id rules (src/tokenizer/added_tokens.h,
assign_added_token_ids): tokenizer.json variants whose added_tokens declare ids that `tokenizers`
does not keep, and the ids it gives them.

Usage (from the repo root, with the project venv):
    .venv/bin/python scripts/gen_added_token_fixtures.py
Writes tests/fixtures/tokenizer/added_token_ids.json:
    {"base": the tokenizer.json the variants extend (relative to the repo root), "text",
     "variants": [{"name", "added": [[content, declared id, special]], "ids": encode(text) without
     special tokens, "token_ids": {content: token_to_id}, "vocab_size": get_vocab_size(),
     "decoded": decode(ids, skip_special_tokens=True)}]}
Each variant appends its tokens to the base's added_tokens. transformers' PreTrainedTokenizerFast
on the same file is checked to give the same ids.
"""
import copy
import json
import os

import tokenizers
from transformers import PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = "tests/fixtures/tokenizers/llama3_1/tokenizer.json"
OUT = os.path.join(ROOT, "tests/fixtures/tokenizer/added_token_ids.json")
TEXT = "x<|a|> hello<|b|> and<|c|>"

# The Llama 3.1 vocabulary has 128000 entries and 256 added tokens (128000..128255).
VARIANTS = [
    ("gap", [("<|a|>", 128256, True), ("<|b|>", 128264, True)]),
    ("duplicate_of_a_vocabulary_id", [("<|a|>", 104, True), ("<|b|>", 128256, True)]),
    ("out_of_order", [("<|b|>", 128257, True), ("<|a|>", 128256, True), ("<|c|>", 128258, True)]),
    ("content_is_a_vocabulary_token", [("hello", 128256, False), ("<|a|>", 128257, True)]),
    ("repeated_content", [("<|a|>", 128256, True), ("<|a|>", 128257, False), ("<|b|>", 128258, True)]),
    ("declared_inside_the_vocabulary", [("<|a|>", 5, True), ("<|b|>", 6, False)]),
    ("consistent", [("<|a|>", 128256, True), ("<|b|>", 128257, False)]),
]


def entry(content, id_, special):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": special}


def main():
    with open(os.path.join(ROOT, BASE), encoding="utf-8") as f:
        base = json.load(f)
    out = {"base": BASE, "text": TEXT, "variants": []}
    for name, added in VARIANTS:
        j = copy.deepcopy(base)
        j["added_tokens"] = j["added_tokens"] + [entry(*a) for a in added]
        tok = tokenizers.Tokenizer.from_str(json.dumps(j))
        ids = tok.encode(TEXT, add_special_tokens=False).ids
        fast = PreTrainedTokenizerFast(tokenizer_object=tok)
        assert fast(TEXT, add_special_tokens=False)["input_ids"] == ids, name
        out["variants"].append({"name": name, "added": added, "ids": ids,
                                "token_ids": {c: tok.token_to_id(c) for c, _, _ in added},
                                "vocab_size": tok.get_vocab_size(),
                                "decoded": tok.decode(ids, skip_special_tokens=True)})
        print(name, ids, out["variants"][-1]["token_ids"])
    out["tokenizers_version"] = tokenizers.__version__
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
