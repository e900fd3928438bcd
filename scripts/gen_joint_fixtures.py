#!/usr/bin/env python3
"""Oracle fixture for `dtune pretokenize --encode joint` (src/data/pretokenizer.cpp): the recipe's
formatted text (template "recipe" + the EOS text, as the recipe builds it) tokenized whole by
transformers, tokenizer(text)["input_ids"], for completions that start with "\\n", "\\n\\n", a
space, a tab, a digit and a letter, with the Llama 3.1 and DeepSeek-V3 tokenizers.

Usage (from the repo root, with the project venv):
    .venv/bin/python scripts/gen_joint_fixtures.py
Writes tests/fixtures/data/joint_recipe.json:
    {"template": "recipe", "cases": [{"tokenizer": folder under tests/fixtures/tokenizers,
     "rows": [{"Question", "Complex_CoT", "Response", "text", "ids", "prompt_tokens"}]}]}
prompt_tokens: the leading tokens whose offset_mapping lies inside the prompt (special tokens,
offsets (0, 0), count as prompt): the prompt mask --completion-only-loss true puts on them. The
recipe's row format must match src/data/prompt_template.cpp's "recipe" preset.
"""
import json
import os

from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "data", "joint_recipe.json")
PROMPT = "Please reason step by step:\n\nQuestion: {Question}\n\nLet's solve this step by step:\n"
COMPLETION = "{Complex_CoT}\n\nFinal Answer: {Response}"
QUESTION = "A 45-year-old has sudden, sharp chest pain on breathing in. What is likely?"
COTS = ["\nOkay, so the patient has pleuritic pain.", "\n\nOkay, so the patient", " Okay, so the patient",
        "\tOkay, so the patient", "45-year-old: think of PE.", "Okay, so the patient"]
RESPONSE = "Pulmonary embolism; check the Wells score."


def main():
    cases = []
    for name in ("llama3_1", "deepseek_v3"):
        tok = AutoTokenizer.from_pretrained(os.path.join(ROOT, "tests", "fixtures", "tokenizers", name))
        rows = []
        for cot in COTS:
            row = {"Question": QUESTION, "Complex_CoT": cot, "Response": RESPONSE}
            prompt = PROMPT.format(**row)
            text = prompt + COMPLETION.format(**row) + tok.eos_token
            enc = tok(text, return_offsets_mapping=True)
            inside = 0
            for begin, end in enc["offset_mapping"]:
                if end > len(prompt):
                    break
                inside += 1
            rows.append({**row, "text": text, "ids": enc["input_ids"], "prompt_tokens": inside})
        cases.append({"tokenizer": name, "rows": rows})
        print(name, [r["ids"][r["prompt_tokens"] - 2:r["prompt_tokens"] + 2] for r in rows])
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({"template": "recipe", "cases": cases}, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
