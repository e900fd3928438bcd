#!/usr/bin/env python3
"""Benchmark `dtune tokenize` against PyPI `tokenizers` encode_batch on the same ~5 MB corpus.

Run: .venv/bin/python bench/tokenize_bench.py [--dtune build/bin/dtune]
     [--tokenizer tests/fixtures/tokenizers/llama3_1] [--mb 5] [--threads N]
Checks that both give identical ids for every line, then prints tokens/s for both and the ratio.
dtune is timed twice: whole process (includes loading tokenizer.json), and encode only (the
time dtune itself logs for reading, encoding and writing the lines, excluding the load).
`tokenizers` is timed on encode_batch only (file already loaded, strings already in memory).
"""
import argparse
import json
import os
import random
import re
import subprocess
import tempfile
import time
from pathlib import Path

import tokenizers

ROOT = Path(__file__).resolve().parent.parent

SENTENCES = [
    "The patient, a {age}-year-old {sex} with a history of {cond}, presented with {sym}.",
    "Labs: troponin I {x}.{y} ng/mL, creatinine {y}.{x} mg/dL, HbA1c {x}.{y}%, LDL {n} mg/dL.",
    "ECG showed ST-segment elevation in leads II, III, and aVF, consistent with an inferior STEMI.",
    "He was given aspirin {n} mg PO, clopidogrel {n} mg loading dose, and heparin {x}0 U/kg IV bolus.",
    "Impression: {cond}. Plan: {plan}; follow-up in {x} weeks.",
    "Differential diagnosis includes pulmonary embolism, aortic dissection, and pericarditis.",
    "Medications: metformin {n} mg BID, lisinopril {x}0 mg daily, atorvastatin {x}0 mg qHS.",
    "Vitals: BP {n}/{x}{y} mmHg, HR {n} bpm, RR {x}{y}/min, SpO₂ 9{x}% on RA, T 3{x}.{y} °C.",
    "Le patient présente une dyspnée d'effort et des œdèmes des membres inférieurs.",
    "Der Patient klagt über Übelkeit, Erbrechen und Schmerzen im rechten Oberbauch.",
    "患者男性，{age}岁，因胸痛{x}小时入院。既往有高血压、糖尿病病史。",
    "IL-6, TNF-α, and CRP levels were elevated (p < 0.00{x}, 95% CI 1.{x}–3.{y}).",
    "She denies fever, chills, night sweats, or weight loss; review of systems otherwise negative.",
    "MRI of the lumbar spine revealed a {x} mm disc herniation at L{x}-L{y} with nerve root impingement.",
]
FILL = {
    "sex": ["male", "female"],
    "cond": ["type 2 diabetes mellitus", "hypertension", "chronic kidney disease stage 3",
             "COPD", "atrial fibrillation", "hypothyroidism", "major depressive disorder"],
    "sym": ["acute chest pain", "progressive dyspnea", "syncope", "fever and productive cough",
            "abdominal pain radiating to the back", "new-onset confusion"],
    "plan": ["emergent PCI", "start IV antibiotics", "CT angiography", "admit to telemetry"],
}


def make_corpus(mb, seed=7):
    rng = random.Random(seed)
    lines, size = [], 0
    while size < mb * 1_000_000:
        k = rng.randint(1, 8)
        parts = []
        for _ in range(k):
            s = rng.choice(SENTENCES)
            s = s.format(age=rng.randint(18, 95), n=rng.randint(10, 999), x=rng.randint(1, 9),
                         y=rng.randint(0, 9), **{key: rng.choice(v) for key, v in FILL.items()})
            parts.append(s)
        text = " ".join(parts) if rng.random() < 0.7 else "\n".join(parts)
        lines.append(text)
        size += len(text.encode())
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtune", default=str(ROOT / "build" / "bin" / "dtune"))
    ap.add_argument("--tokenizer", default=str(ROOT / "tests" / "fixtures" / "tokenizers" / "llama3_1"))
    ap.add_argument("--mb", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()

    lines = make_corpus(args.mb)
    nbytes = sum(len(t.encode()) for t in lines)
    tok_path = args.tokenizer
    if os.path.isdir(tok_path):
        tok_path = os.path.join(tok_path, "tokenizer.json")
    tok = tokenizers.Tokenizer.from_file(tok_path)

    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.jsonl"
        inp.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in lines), encoding="utf-8")
        out = Path(tmp) / "out.jsonl"
        cmd = [args.dtune, "tokenize", "--tokenizer", args.tokenizer, "--threads", str(args.threads)]
        with open(inp) as fi, open(out, "w") as fo:
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, stdin=fi, stdout=fo, stderr=subprocess.PIPE, text=True, check=True)
            dtune_s = time.perf_counter() - t0
        # "tokenize: N lines, T tokens in S s on K threads (...); loading the tokenizer took L s"
        m = re.search(r"tokens in ([0-9.e+-]+) s on .* took ([0-9.e+-]+) s", proc.stderr)
        enc_s, load_s = float(m.group(1)), float(m.group(2))
        dtune_ids = [json.loads(l)["ids"] for l in out.read_text(encoding="utf-8").splitlines()]

    t0 = time.perf_counter()
    ref = [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]
    ref_s = time.perf_counter() - t0

    assert len(ref) == len(dtune_ids), (len(ref), len(dtune_ids))
    bad = [i for i, (a, b) in enumerate(zip(ref, dtune_ids)) if a != b]
    ntok = sum(len(r) for r in ref)
    print(f"corpus: {len(lines)} lines, {nbytes / 1e6:.2f} MB, {ntok} tokens; tokenizer {tok_path}")
    print(f"ids identical: {not bad} ({len(bad)} differing lines)")
    print(f"tokenizers {tokenizers.__version__} encode_batch ({os.cpu_count()} cores): "
          f"{ref_s:.3f} s  {ntok / ref_s / 1e6:.3f} M tokens/s")
    print(f"dtune tokenize --threads {args.threads}, whole process: {dtune_s:.3f} s  "
          f"{ntok / dtune_s / 1e6:.3f} M tokens/s  (ratio {ref_s / dtune_s:.2f}x)")
    print(f"dtune tokenize encode only (load {load_s:.3f} s excluded): {enc_s:.3f} s  {ntok / enc_s / 1e6:.3f} M tokens/s  "
          f"(ratio {ref_s / enc_s:.2f}x)")
    if bad:
        raise SystemExit(f"first differing line: {bad[0]}")


if __name__ == "__main__":
    main()
