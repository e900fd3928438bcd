#!/usr/bin/env bash
# Runs every CPU benchmark of bench/ with its documented command, from a fresh build of the
# binaries they time, and prints one table for the machine it runs on (CPU model from
# /proc/cpuinfo, its vector extensions, cores, load). Each bench's full output is kept in OUT.
#   bash bench/cpu_all.sh
# Environment (defaults = the commands the docs give):
#   BUILD_DIR   build folder (build; scripts/build.sh configures it as CI does)
#   THREADS     threads for both sides (2)
#   TOKENIZE_MB corpus size of bench/tokenize_bench.py (5)
#   DECODE_TOKENS / DECODE_REPEATS  bench/generate_bench.py --new-tokens / --repeats (48 / 2)
#   MODEL_STEPS / MODEL_ROUNDS      bench/model_cpu_bench.py --steps / --rounds (2 / 2)
#   TRAIN_STEPS bench/train_cpu_bench.py --steps (2; the slowest bench: ~7 min on 2 cores)
#   BENCHES     which to run, of "tokenize generate model_fp32 model_bf16 train" (all)
#   OUT         where the logs go (bench-results/cpu_all-<UTC date>)
# Needs the venv (scripts/setup.sh) and models/SmolLM2-135M-Instruct.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
THREADS=${THREADS:-2}
TOKENIZE_MB=${TOKENIZE_MB:-5}
DECODE_TOKENS=${DECODE_TOKENS:-48}
DECODE_REPEATS=${DECODE_REPEATS:-2}
MODEL_STEPS=${MODEL_STEPS:-2}
MODEL_ROUNDS=${MODEL_ROUNDS:-2}
TRAIN_STEPS=${TRAIN_STEPS:-2}
BENCHES=${BENCHES:-tokenize generate model_fp32 model_bf16 train}
OUT=${OUT:-bench-results/cpu_all-$(date -u +%Y%m%dT%H%M%SZ)}
PY=.venv/bin/python
mkdir -p "$OUT"

cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
flags=$(grep -m1 '^flags' /proc/cpuinfo)
isa=""
for f in avx2 avx512f avx512_bf16 amx_bf16; do
  case " $flags " in *" $f "*) isa+="${isa:+, }$f" ;; esac
done
machine="$cpu ($(nproc) cores for this process; ${isa:-no AVX2})"

start=$(date +%s)
echo "cpu_all.sh: building dtune and dtune_model_bench in $BUILD_DIR"
BUILD_DIR="$BUILD_DIR" bash scripts/build.sh dtune dtune_model_bench > "$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log"; exit 1; }
build_s=$(( $(date +%s) - start ))

declare -a rows
# run NAME WHAT CMD...: runs one bench, logs it, keeps its wall time.
run() {
  local name=$1 what=$2; shift 2
  case " $BENCHES " in *" $name "*) ;; *) return 0 ;; esac
  echo "cpu_all.sh: $name: $*"
  local t0 rc=0
  t0=$(date +%s)
  "$@" > "$OUT/$name.log" 2>&1 || rc=$?
  echo "$*" > "$OUT/$name.cmd"
  echo "$(( $(date +%s) - t0 ))" > "$OUT/$name.wall"
  if [ "$rc" != 0 ]; then
    tail -20 "$OUT/$name.log"
    echo "cpu_all.sh: $name FAILED (exit $rc; log $OUT/$name.log)"
    echo "FAILED" > "$OUT/$name.result"
    return 0
  fi
  echo "$what" > "$OUT/$name.what"
}
run tokenize "tokenizing ${TOKENIZE_MB} MB (llama3_1 tokenizer.json), dtune tokenize vs tokenizers encode_batch" \
  $PY bench/tokenize_bench.py --dtune "$BUILD_DIR/bin/dtune" --mb "$TOKENIZE_MB"
run generate "decode, SmolLM2-135M fp32 greedy, $THREADS threads, dtune generate vs transformers generate tok/s" \
  $PY bench/generate_bench.py --dtune "$BUILD_DIR/bin/dtune" --threads "$THREADS" --new-tokens "$DECODE_TOKENS" \
  --repeats "$DECODE_REPEATS"
run model_fp32 "LoRA forward + backward per token, SmolLM2, seq 512, fp32, vs transformers + peft" \
  $PY bench/model_cpu_bench.py --binary "$BUILD_DIR/bin/dtune_model_bench" --threads "$THREADS" \
  --steps "$MODEL_STEPS" --rounds "$MODEL_ROUNDS" --dtype fp32
run model_bf16 "LoRA forward + backward per token, SmolLM2, seq 512, bf16, vs transformers + peft" \
  $PY bench/model_cpu_bench.py --binary "$BUILD_DIR/bin/dtune_model_bench" --threads "$THREADS" \
  --steps "$MODEL_STEPS" --rounds "$MODEL_ROUNDS" --dtype bf16
run train "dtune train time per optimizer step, the sample data, vs a peft loop (pad to longest / pad to 512)" \
  $PY bench/train_cpu_bench.py --binary "$BUILD_DIR/bin/dtune" --threads "$THREADS" --steps "$TRAIN_STEPS" \
  --warmup 1 --workdir "$OUT/train_work"

# The figure of each bench, from the line its script prints.
figure() {
  local name=$1 log="$OUT/$1.log"
  case $name in
    tokenize) grep -o 'whole process: .*(ratio [0-9.]*x)' "$log" | grep -o 'ratio [0-9.]*x' | sed 's/ratio /whole process /'
              grep 'encode only' "$log" | grep -o 'ratio [0-9.]*x' | sed 's/ratio /, encode only /' ;;
    generate) grep -o 'ratio dtune / transformers: [0-9.]*x' "$log" | sed 's/.*: //' ;;
    model_*) grep -o 'speed-up (transformers / dtune): [0-9.]*x' "$log" | sed 's/.*: //' ;;
    train) grep -o 'time per step, .* / dtune: [0-9.]*x' "$log" | sed 's/time per step, //; s/ \/ dtune//; s/$/;/' ;;
  esac | tr '\n' ' ' | sed 's/ ,/,/g; s/;* *$//'
}

echo
echo "CPU: $machine"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); build $build_s s; load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ratio = dtune speed / the Python stack's speed (higher is better for dtune); logs in $OUT"
echo
echo "| bench | what | dtune vs Python | wall s |"
echo "| --- | --- | --- | --- |"
for name in tokenize generate model_fp32 model_bf16 train; do
  case " $BENCHES " in *" $name "*) ;; *) continue ;; esac
  if [ -f "$OUT/$name.result" ]; then
    echo "| $name | $(cat "$OUT/$name.cmd") | FAILED (see $OUT/$name.log) | $(cat "$OUT/$name.wall") |"
  else
    echo "| $name | $(cat "$OUT/$name.what") | $(figure "$name") | $(cat "$OUT/$name.wall") |"
  fi
done | tee "$OUT/table.md"
! ls "$OUT"/*.result > /dev/null 2>&1
