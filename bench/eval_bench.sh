#!/usr/bin/env bash
# Eval time against one training step (issue 22, item 6): `dtune train` on a tiny Llama with
# SmolLM2's tokenizer and data/medical_sample.json (as tests/train/train_e2e_test.py), 3
# optimizer steps with an eval after each, once per micro-batch size; prints, per size, the
# median training step (step_s) and eval (eval_s) from metrics.jsonl, the eval's loss tokens
# and loss, and eval_s / step_s. Eval runs in micro-batches of data.micro_batch_size rows, so
# MICRO_BATCHES="1 4" shows batching's effect (1 = one row per forward, as before).
#
#   bash bench/eval_bench.sh   # MICRO_BATCHES="1 4" THREADS=2 DEVICE=cpu PRECISION=fp32 DTUNE=build/bin/dtune
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dtune=${DTUNE:-$root/build/bin/dtune}
py=${PYTHON:-$root/.venv/bin/python}
work=${WORK:-/tmp/dtune_eval_bench}
rm -rf "$work" && mkdir -p "$work"
"$py" "$root/scripts/make_tiny_model.py" --arch llama --untied --seed 3 \
  --tokenizer "$root/models/SmolLM2-135M-Instruct" --output "$work/model" > /dev/null 2>&1
"$dtune" pretokenize --tokenizer "$work/model" --input "$root/data/medical_sample.json" --output "$work/data.h5" \
  --max-length 160 --eval-fraction 0.15 --seed 1 > /dev/null 2>&1
for b in ${MICRO_BATCHES:-1 4}; do
  "$dtune" train --model.path="$work/model" --data.path="$work/data.h5" --data.micro_batch_size="$b" \
    --train.device="${DEVICE:-cpu}" --train.precision="${PRECISION:-fp32}" --train.threads="${THREADS:-2}" --train.max_steps=3 --train.eval_every=1 \
    --checkpoint.output_dir="$work/run_$b" --generate.enabled=false --log.tensorboard=false --log.progress=lines \
    > "$work/run_$b.log" 2>&1 || { tail -20 "$work/run_$b.log"; exit 1; }
  "$py" - "$work/run_$b/metrics.jsonl" "$b" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
step = statistics.median(r["step_s"] for r in rows if r["kind"] == "train")
evals = [r for r in rows if r["kind"] == "eval"]
ev = statistics.median(r["eval_s"] for r in evals)
print(f"micro_batch_size {sys.argv[2]}: train step {step:.3f} s (median of 3), eval {ev:.3f} s (median of "
      f"{len(evals)}; {int(evals[-1]['tokens'])} loss tokens, loss {evals[-1]['loss']:.5f}), eval / step {ev / step:.2f}")
PY
done
