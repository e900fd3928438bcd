#!/usr/bin/env bash
# Builds the libFuzzer harnesses under tools/ with clang (ASan + UBSan) in their own build folder
# and runs each for FUZZ_SECONDS on its seed corpus (tools/<harness>/corpus: the real files of
# tests/fixtures and configs/). Any crash, sanitizer report, broken invariant, timeout (10 s on
# one input) or out-of-memory fails the script, naming the harness and the saved input.
# scripts/test.sh (what CI runs) calls it after the unit tests.
#   bash scripts/fuzz.sh [HARNESS...]     # default: all
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_SECONDS (default 20), JOBS (cores).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
JOBS=${JOBS:-$(nproc)}
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  harnesses=(fuzz_row_reader fuzz_safetensors fuzz_tokenizer fuzz_model_config
             fuzz_chat_format fuzz_config_ini fuzz_row_index fuzz_adapter_config)
fi
# Seeds kept as JSON Lines of {"text": ...} (one input per line), and extra flags per harness.
declare -A seed_texts=([fuzz_tokenizer]="tests/fixtures/tokenizer/corpus.jsonl")
declare -A flags=([fuzz_row_reader]="-dict=tools/fuzz_row_reader/json.dict -max_len=4096"
                  [fuzz_tokenizer]="-max_len=4096")

start=$(date +%s)
cmake -S . -B "$FUZZ_BUILD_DIR" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DDTUNE_FUZZ=ON -DDTUNE_BUILD_TESTS=OFF > "$FUZZ_BUILD_DIR.configure.log" 2>&1 \
  || { cat "$FUZZ_BUILD_DIR.configure.log"; exit 1; }
targets=()
for h in "${harnesses[@]}"; do targets+=(--target "$h"); done
cmake --build "$FUZZ_BUILD_DIR" -j "$JOBS" "${targets[@]}"
# One harness: its own scratch corpus (the committed one stays as it is), its log, and a status
# file (0 = clean). Runs JOBS harnesses at a time: each libFuzzer process uses one core.
run_one() {
  local h=$1 work corpus log
  work=$(mktemp -d)
  corpus=()
  [ -d "tools/$h/corpus" ] && corpus=(tools/$h/corpus)
  if [ -n "${seed_texts[$h]:-}" ]; then  # the texts go into $work, which libFuzzer reads first
    .venv/bin/python -c 'import json, sys
for i, line in enumerate(open(sys.argv[1], encoding="utf-8")):
    open(f"{sys.argv[2]}/{i:04d}", "wb").write(json.loads(line)["text"].encode("utf-8"))' "${seed_texts[$h]}" "$work"
  fi
  log="$FUZZ_BUILD_DIR/$h.log"
  local rc=0
  # shellcheck disable=SC2086  # flags are words
  "$FUZZ_BUILD_DIR/bin/$h" "$work" "${corpus[@]}" -max_total_time="$FUZZ_SECONDS" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$FUZZ_BUILD_DIR/$h-" ${flags[$h]:-} \
    > "$log" 2>&1 || rc=$?
  echo "$rc" > "$FUZZ_BUILD_DIR/$h.status"
  rm -rf "$work"
}

fuzz_start=$(date +%s)
running=0
for h in "${harnesses[@]}"; do
  echo "fuzz.sh: $h for ${FUZZ_SECONDS} s on tools/$h/corpus ${seed_texts[$h]:-}"
  rm -f "$FUZZ_BUILD_DIR/$h.status"
  run_one "$h" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=()
for h in "${harnesses[@]}"; do
  log="$FUZZ_BUILD_DIR/$h.log"
  if [ "$(cat "$FUZZ_BUILD_DIR/$h.status" 2>/dev/null || echo missing)" != 0 ]; then
    tail -40 "$log"
    echo "fuzz.sh: $h FAILED; the input is saved as" \
         "$(grep -o "$FUZZ_BUILD_DIR/$h-[a-z-]*[0-9a-f]*" "$log" | tail -1) (reproduce: $FUZZ_BUILD_DIR/bin/$h FILE)"
    failed+=("$h")
  else
    echo "fuzz.sh: $h: $(grep -E "stat::number_of_executed_units|stat::new_units_added" "$log" | tr -s ' \n' ' ')"
  fi
done
echo "fuzz.sh: ${#harnesses[@]} harnesses: build $(( fuzz_start - start )) s, fuzzing $(( $(date +%s) - fuzz_start )) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}"
  exit 1
fi
