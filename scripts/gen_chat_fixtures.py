#!/usr/bin/env python3
"""Oracle fixtures for dtune's native chat templates (src/data/chat_template.cpp,
chat_tokenizer.cpp): what transformers' apply_chat_template renders and tokenizes for each
recognised template, and the assistant-turn loss mask.

Usage (from the repo root, with the project venv):
    .venv/bin/python scripts/gen_chat_fixtures.py
Writes tests/fixtures/data/chat_<case>.json:
    {"case", "tokenizer": tokenizer.json path, "chat_template": tokenizer_config.json path
     (both relative to the repo root), "rows": [{"messages", "first_trained", "text", "ids",
     "loss_mask"}], "generation_prompts": [{"messages", "text", "ids"}]}
text = apply_chat_template(messages, tokenize=False); ids = apply_chat_template(messages,
tokenize=True) (checked equal to tokenizing text without special tokens). The loss mask is
computed here from character offsets, independently of dtune's renderer: the text an assistant
turn adds is render(messages[:i+1]) minus render(messages[:i]); its span runs from the end of
the family's assistant header to the end of the turn's last end-of-turn token; a token takes
the loss when its offset_mapping range overlaps a span of a turn at index >= first_trained.
The C++ test compares text, ids and mask exactly (tolerance 0: all of it is deterministic).
generation_prompts: apply_chat_template(messages, add_generation_prompt=True) (text and ids) for
a user turn alone and after a system message: what `dtune generate --chat` must produce.
"""
import json
import os

from transformers import PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = "tests/fixtures"
OUT_DIR = os.path.join(ROOT, FIX, "data")

R1_ASSISTANT, R1_EOS = "<\uff5cAssistant\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>"
LLAMA_ASSISTANT, LLAMA_EOT = "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"
CHATML_ASSISTANT, CHATML_END = "<|im_start|>assistant\n", "<|im_end|>"

# (case, tokenizer.json, tokenizer_config.json with the chat_template, assistant header, end token)
CASES = [
    ("deepseek_v3", f"{FIX}/tokenizers/deepseek_v3/tokenizer.json", f"{FIX}/tokenizers/deepseek_v3/tokenizer_config.json",
     R1_ASSISTANT, R1_EOS),
    ("r1_distill_qwen", f"{FIX}/tokenizers/deepseek_v3/tokenizer.json",
     f"{FIX}/chat_templates/r1_distill_qwen/tokenizer_config.json", R1_ASSISTANT, R1_EOS),
    ("r1_distill_llama", f"{FIX}/tokenizers/deepseek_v3/tokenizer.json",
     f"{FIX}/chat_templates/r1_distill_llama/tokenizer_config.json", R1_ASSISTANT, R1_EOS),
    ("llama3", f"{FIX}/tokenizers/llama3_1/tokenizer.json", f"{FIX}/tokenizers/llama3_1/tokenizer_config.json",
     LLAMA_ASSISTANT, LLAMA_EOT),
    ("llama3_1_instruct", f"{FIX}/tokenizers/llama3_1/tokenizer.json",
     f"{FIX}/chat_templates/llama3_1_instruct/tokenizer_config.json", LLAMA_ASSISTANT, LLAMA_EOT),
    ("smollm2", "models/SmolLM2-135M-Instruct/tokenizer.json", "models/SmolLM2-135M-Instruct/tokenizer_config.json",
     CHATML_ASSISTANT, CHATML_END),
    ("qwen3", f"{FIX}/tokenizers/qwen3/tokenizer.json", f"{FIX}/tokenizers/qwen3/tokenizer_config.json",
     CHATML_ASSISTANT, CHATML_END),
    ("qwen2_instruct", f"{FIX}/tokenizers/qwen3/tokenizer.json",
     f"{FIX}/chat_templates/qwen2_instruct/tokenizer_config.json", CHATML_ASSISTANT, CHATML_END),
    ("qwen2_5_instruct", f"{FIX}/tokenizers/qwen3/tokenizer.json",
     f"{FIX}/chat_templates/qwen2_5_instruct/tokenizer_config.json", CHATML_ASSISTANT, CHATML_END),
]
# Qwen3's template renders an assistant turn differently once a later user turn follows it, so
# a shorter conversation's render is not a prefix of the full one: its spans are found by
# scanning the full text for the assistant header and the end token after it instead.
SCAN_CASES = {"qwen3"}

SYS = {"role": "system", "content": "You are a careful clinician. Answer briefly."}
Q1 = {"role": "user", "content": "A 45-year-old has sudden, sharp chest pain on breathing in. What is likely?"}
A1 = {"role": "assistant", "content": "<think>\nPleuritic pain, sudden onset: think pulmonary embolism or "
      "pneumothorax.\n</think>\n\nMost likely a pulmonary embolism; check Wells score and D-dimer."}
Q2 = {"role": "user", "content": "  And if the D-dimer is negative?  \n"}
A2 = {"role": "assistant", "content": "\nWith a low pre-test probability, PE is ruled out. Caf\u00e9 \u2014 "
      "\u4f11\u606f\u4e00\u4e0b \U0001F60A "}
A_PLAIN = {"role": "assistant", "content": "Pleurisy or a pulmonary embolism."}

# (messages, first_trained): single and multi-turn, with and without a system message,
# reasoning in assistant turns (R1 templates keep only what follows </think>), whitespace that
# Llama's |trim drops, non-ASCII text; the last row is prompt-completion (loss on the completion).
ROWS = [
    ([Q1, A_PLAIN], 0),
    ([SYS, Q1, A_PLAIN], 0),
    ([Q1, A1], 0),
    ([SYS, Q1, A1, Q2, A2], 0),
    ([Q1, A1, Q2, A2], 0),
    ([SYS, Q1, A1, Q2, A2], 4),
]


def render(tok, messages):
    return tok.apply_chat_template(messages, tokenize=False)


def scanned_spans(text, header, end, messages, first_trained):
    spans, at = [], 0
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        begin = text.index(header, at) + len(header)
        stop = text.index(end, begin) + len(end)
        at = stop
        if i >= first_trained:
            spans.append((begin, stop))
    return spans


def oracle_row(tok, header, end, messages, first_trained, scan):
    text = render(tok, messages)
    ids = tok.apply_chat_template(messages, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    assert enc["input_ids"] == ids, "apply_chat_template(tokenize=True) != tokenizing its text"
    spans = scanned_spans(text, header, end, messages, first_trained) if scan else []
    for i, m in enumerate(messages if not scan else []):
        if m["role"] != "assistant" or i < first_trained:
            continue
        before, upto = render(tok, messages[:i]), render(tok, messages[: i + 1])
        assert upto.startswith(before) and text.startswith(upto), "render is not prefix-stable"
        added = upto[len(before):]
        begin = added.index(header) + len(header)
        stop = added.rindex(end) + len(end)
        spans.append((len(before) + begin, len(before) + stop))
    mask = [int(any(s < e and b < t for (s, t) in spans)) for (b, e) in enc["offset_mapping"]]
    return {"messages": messages, "first_trained": first_trained, "text": text, "ids": ids, "loss_mask": mask}


def main():
    for case, tokenizer_json, config, header, end in CASES:
        with open(os.path.join(ROOT, config), encoding="utf-8") as f:
            cfg = json.load(f)
        tok_of = lambda key: cfg[key]["content"] if isinstance(cfg.get(key), dict) else cfg.get(key)
        tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(ROOT, tokenizer_json),
                                      bos_token=tok_of("bos_token"), eos_token=tok_of("eos_token"))
        tok.chat_template = cfg["chat_template"]
        rows = [oracle_row(tok, header, end, m, ft, case in SCAN_CASES) for m, ft in ROWS]
        gen = []
        for messages in ([Q1], [SYS, Q1]):
            ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            gen.append({"messages": messages, "ids": ids,
                        "text": tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)})
        out = {"case": case, "tokenizer": tokenizer_json, "chat_template": config, "rows": rows,
               "generation_prompts": gen}
        path = os.path.join(OUT_DIR, f"chat_{case}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, indent=1)
        print(f"{path}: {len(rows)} rows, {sum(len(r['ids']) for r in rows)} ids")


if __name__ == "__main__":
    main()
