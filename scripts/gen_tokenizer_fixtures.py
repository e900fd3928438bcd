#!/usr/bin/env python3
"""Writes the tokenizer test fixtures from the PyPI `tokenizers` library (the oracle).

Run: /work/main/.venv/bin/python scripts/gen_tokenizer_fixtures.py
Writes tests/fixtures/tokenizer/corpus.jsonl (one {"text": ...} per line), and per tokenizer in
tests/fixtures/tokenizers/<name>/ a file tests/fixtures/tokenizer/<name>.expected.jsonl with, per corpus line:
  ids          encode(text, add_special_tokens=False).ids
  ids_special  encode(text, add_special_tokens=True).ids
  decode       decode(ids_special, skip_special_tokens=False)
  decode_skip  decode(ids_special, skip_special_tokens=True)
  decode_odd   decode(ids_special[::2], skip_special_tokens=False) (often invalid UTF-8 -> U+FFFD)
plus tests/fixtures/tokenizer/sha256.json (hashlib sha256 of each tokenizer.json and of test strings).
"""
import hashlib
import json
import random
import unicodedata
from pathlib import Path

import tokenizers

ROOT = Path(__file__).resolve().parent.parent
TOK_DIR = ROOT / "tests" / "data" / "tokenizers"
OUT_DIR = ROOT / "tests" / "data" / "tokenizer"
NAMES = ["llama3_1", "deepseek_v3", "qwen3"]


def handwritten():
    s = [
        "",
        " ",
        "  ",
        "a",
        "Hello, world!",
        "Hello world",
        " Hello world ",
        "The quick brown fox jumps over the lazy dog.",
        "DON'T STOP ME NOW, I'M HAVING SUCH A GOOD TIME",
        "I'm sure you'll see they've said it's what we'd do",
        "I'M SURE YOU'LL SEE THEY'VE SAID IT'S WHAT WE'D DO",
        "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D",
        "rock'n'roll o'clock y'all ma'am",
        "Ça va? Très bien, merci. À bientôt, Œdipe! naïve café résumé",
        "Straße, Größe, Fußgänger, Übermaß, ÄÖÜ äöü ß ẞ",
        "¿Dónde está la biblioteca? ¡Olé! mañana, niño, corazón",
        "Zażółć gęślą jaźń. Čeština, Slovenčina, Hrvatski: ćčđšž",
        "Привет, как дела? Москва — столица России. ЁЖИК ёжик",
        "Ελληνικά: Καλημέρα κόσμε, ΑΒΓΔ αβγδ ς σ Σ",
        "العربية: مرحبا بالعالم، كيف حالك؟ ١٢٣٤٥٦٧٨٩٠",
        "עברית: שלום עולם! מה שלומך?",
        "हिन्दी: नमस्ते दुनिया, आप कैसे हैं? १२३४",
        "ไทย: สวัสดีครับ ยินดีต้อนรับ",
        "中文：你好，世界！今天天气很好。我们去公园散步吧。",
        "日本語：こんにちは世界。カタカナとひらがな、漢字。",
        "한국어: 안녕하세요 세계! 반갑습니다.",
        "Tiếng Việt: Xin chào thế giới, cảm ơn bạn rất nhiều.",
        "Türkçe: İstanbul, ığüşöç İIıi",
        "ქართული ენა, Հայերեն լեզու, አማርኛ",
        "Emoji: 😀😃😄 👍🏽 👩‍💻 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵🇺🇸 ❤️ ✨",
        "Skin tones: 👋🏻👋🏼👋🏽👋🏾👋🏿 and ZWJ: 🧑‍🔬 🧑🏿‍🚀",
        "Keycaps: 1️⃣ 2️⃣ #️⃣ and variation selectors: ☺︎ ☺️",
        unicodedata.normalize("NFD", "café résumé naïve Ångström"),
        unicodedata.normalize("NFC", "café résumé naïve Ångström"),
        "e\u0301 a\u0308 o\u0302\u0323 n\u0303 A\u030a",
        "\u0301 leading combining mark",
        "Hangul jamo: \u1100\u1161\u11a8 vs \uac01",
        unicodedata.normalize("NFD", "한국어 안녕하세요"),
        "tabs\tand\t\tmore\ttabs",
        "line one\nline two\n\nline four\n",
        "windows\r\nline\r\nendings\r\n",
        "trailing spaces   ",
        "   leading spaces",
        "many     spaces   between    words",
        "\n\n\n",
        " \n \n ",
        "\t\n\r\x0b\x0c",
        "mixed \u00a0nbsp\u00a0 and \u3000ideographic\u3000space",
        "thin\u2009space en\u2002space em\u2003space",
        "NEL\u0085next line and LS\u2028PS\u2029",
        "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
        "0 1 12 123 1234 12345 123456 1234567 12345678901234567890",
        "3.14159265358979 2.718281828 -42 +7 1e-10 6.022e23",
        "Phone: +1 (555) 123-4567, ZIP 90210, 2024-03-15T12:34:56Z",
        "$1,234,567.89 €99.99 £5 ¥1000 ₹500 50% 3/4 ½ ¾",
        "Roman numerals Ⅻ ⅷ and superscripts x² y³ and fractions ⅓",
        "Arabic-Indic ٣٤٥ Devanagari ७८९ fullwidth １２３ Thai ๑๒๓",
        "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
        "import numpy as np\nx = np.arange(10).reshape(2, 5)\nprint(x.T @ x)",
        "#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n  return v.size() == 3 ? 0 : 1;\n}\n",
        "template <typename T> T max(T a, T b) { return a > b ? a : b; } // C++",
        '{"name": "dtune", "version": [0, 1, 0], "tags": ["lora", "mpi"], "ok": true, "x": null}',
        "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son';",
        "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
        "a==b!=c<=d>=e->f=>g::h... ??? !!! ### $$$ %%% ^^^ &&& *** ((( )))",
        "~`!@#$%^&*()_+-={}[]|\\:;\"'<>,.?/",
        "https://example.com/path?query=1&x=y#frag user@example.org",
        "snake_case camelCase PascalCase kebab-case SCREAMING_SNAKE_CASE",
        "<|begin_of_text|>Hello<|eot_id|>",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
        "text <|end_of_text|> more text <|reserved_special_token_5|>",
        "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>Hi<｜Assistant｜>Hello<｜end▁of▁sentence｜>",
        "<｜fim▁begin｜>def f():<｜fim▁hole｜>\n    pass<｜fim▁end｜>",
        "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nHi<|im_end|>",
        "<think>\nLet me think.\n</think>\nThe answer is 42.",
        "<tool_call>{\"name\": \"f\"}</tool_call> <|EOT|> <|endoftext|>",
        "<|im_start|><|im_start|>  <|im_end|><|im_end|>",
        "<|begin_of_text|",
        "< |begin_of_text|>",
        "<<|eot_id|>>",
        "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
        "e\u0301<|im_end|>\u0301",
        "The patient, a 67-year-old male with a history of type 2 diabetes mellitus, hypertension, "
        "and hyperlipidemia, presented with acute-onset chest pain radiating to the left arm.",
        "Labs: troponin I 0.45 ng/mL (ref < 0.04), creatinine 1.3 mg/dL, eGFR 58 mL/min/1.73m², "
        "HbA1c 8.2%, LDL 142 mg/dL.",
        "ECG showed ST-segment elevation in leads II, III, and aVF, consistent with an inferior STEMI.",
        "He was given aspirin 325 mg PO, clopidogrel 600 mg loading dose, and heparin 60 U/kg IV bolus.",
        "Impression: Acute inferior myocardial infarction. Plan: emergent PCI; start atorvastatin 80 mg.",
        "Differential diagnosis includes pulmonary embolism, aortic dissection, and pericarditis.",
        "Medications: metformin 1000 mg BID, lisinopril 20 mg daily, atorvastatin 40 mg qHS.",
        "Allergies: NKDA. Social history: 30 pack-year smoking history, quit 2015; occasional EtOH.",
        "Vitals: BP 158/94 mmHg, HR 102 bpm, RR 20/min, SpO₂ 94% on RA, T 37.2 °C.",
        "Le patient présente une dyspnée d'effort et des œdèmes des membres inférieurs.",
        "Der Patient klagt über Übelkeit, Erbrechen und Schmerzen im rechten Oberbauch.",
        "Пациент жалуется на головную боль и повышение температуры до 38,5 °C.",
        "患者男性，67岁，因胸痛3小时入院。既往有高血压、糖尿病病史。",
        "患者は65歳の女性で、発熱と咳嗽を主訴に来院した。",
        "μ-opioid receptor agonists; α-blockers; β₂-agonists; γ-aminobutyric acid (GABA)",
        "IL-6, TNF-α, and CRP levels were elevated (p < 0.001, 95% CI 1.2–3.4).",
        "Dose: 0.5 mg/kg q6h × 3 days → taper; max 4 g/day ≤ 60 kg ≥ 18 y",
        "x" * 300,
        "ab" * 200,
        "🙂" * 50,
        "1" * 100,
        " " * 64,
        "\n" * 30,
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "A.B.C. e.g. i.e. etc. vs. Dr. Mr. Mrs. St.",
        "She said, \"Hello\" — and then left… ‘quoted’ “double” «guillemets» „German“",
        "Math: ∀x ∈ ℝ, ∃y: x² + y² = 1; ∑ᵢ aᵢ ≈ ∫ f(x) dx; √2 ≠ π",
        "Arrows ← ↑ → ↓ ⇒ ⇔ and boxes ┌─┐│└┘ ░▒▓█",
        "Musical 𝄞 and math bold 𝐀𝐁𝐂 and old italic 𐌀𐌁",
        "Private use \ue000\uf8ff and specials \ufffd\ufffc",
        "Kelvin \u212a and long s \u017f: 'ſ 'K",
        "ﬁ ﬂ ligatures ﬃ and fullwidth ＡＢＣ ａｂｃ",
        "Ǆ ǅ ǆ titlecase digraphs",
        "Hello\u0000world with NUL",
        "control \x01\x02\x1b[31mred\x1b[0m \x7f",
        "Mixed: English中文日本語한국어Русский",
        "CamelCase123Numbers456andLetters",
        "abc123def4567ghi89",
        "'''triple''' \"\"\"quotes\"\"\" ``backticks``",
        "    indented code\n\tand tab-indented\n",
        "a\n\nb\r\n\r\nc\r\rd",
        "end with newline\n",
        "?!",
        "...",
        "'",
        "''",
        "'s",
        "don't",
        "DON'T",
        "I'M",
        "I'm",
        "Ő ő Ű ű",
        "ﷺ ﷽",
        "\u0915\u094d\u0937 \u0924\u094d\u0930 \u091c\u094d\u091e",
        "\u0e01\u0e33 \u0e40\u0e01\u0e48\u0e32",
        "a\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307",
        "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L",
    ]
    return s


def random_strings(n, seed=1234):
    """Random mixes of characters from many scripts and classes, to probe regex edge cases."""
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\r\u00a0\u3000\u2009",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        "éàüöçñÆØÅßœ",
        "абвгдежзийклмнопрстуфхцчшщъыьэюя",
        "αβγδεζηθικλμνξοπρστυφχψω",
        "你好世界中文汉字测试",
        "ひらがなカタカナ",
        "한국어테스트",
        "\u0301\u0308\u0327\u0300",
        "😀👍🏽‍♀️🇫🇷",
        "١٢٣٤५६७८",
        "'sS'tT'reRE'veVE'mM'llLL'dD",
    ]
    out = []
    for _ in range(n):
        length = rng.randint(1, 40)
        chars = []
        for _ in range(length):
            pool = rng.choice(pools)
            chars.append(rng.choice(pool))
        out.append("".join(chars))
    return out


def main():
    corpus = handwritten() + random_strings(60)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with open(OUT_DIR / "corpus.jsonl", "w", encoding="utf-8") as f:
        for text in corpus:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    sha = {"tokenizers": {}, "strings": {}}
    for name in NAMES:
        path = TOK_DIR / name / "tokenizer.json"
        sha["tokenizers"][name] = hashlib.sha256(path.read_bytes()).hexdigest()
        tok = tokenizers.Tokenizer.from_file(str(path))
        with open(OUT_DIR / f"{name}.expected.jsonl", "w", encoding="utf-8") as f:
            for text in corpus:
                ids = tok.encode(text, add_special_tokens=False).ids
                ids_special = tok.encode(text, add_special_tokens=True).ids
                rec = {
                    "ids": ids,
                    "ids_special": ids_special,
                    "decode": tok.decode(ids_special, skip_special_tokens=False),
                    "decode_skip": tok.decode(ids_special, skip_special_tokens=True),
                    "decode_odd": tok.decode(ids_special[::2], skip_special_tokens=False),
                }
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    # SHA-256 test vectors around the 55/56/64-byte padding boundaries.
    for s in ["", "abc", "a" * 55, "a" * 56, "a" * 63, "a" * 64, "a" * 65, "a" * 1000,
              "The quick brown fox jumps over the lazy dog"]:
        sha["strings"][s] = hashlib.sha256(s.encode()).hexdigest()
    with open(OUT_DIR / "sha256.json", "w", encoding="utf-8") as f:
        json.dump(sha, f, indent=1, ensure_ascii=False)
    print(f"wrote {len(corpus)} corpus lines, tokenizers {tokenizers.__version__}")


if __name__ == "__main__":
    main()
