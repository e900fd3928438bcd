#!/usr/bin/env bash
# Throughput and peak memory of `dtune pretokenize` on synthetic data shaped like
# medical-o1-reasoning-SFT (Question / Complex_CoT / Response, ~1,000 llama3 tokens a row).
# Runs 25,000 rows (rows/s, peak RSS) and 5,000 rows (peak RSS) to show memory does not grow
# with the input size. Results go in docs/bench/PRETOKENIZE.md.
#
# Usage: bash bench/pretokenize_bench.sh [build dir, default build] [threads, default nproc]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=${2:-$(nproc)}
dtune="$build/bin/dtune"
tokenizer=tests/fixtures/tokenizers/llama3_1
work=${BENCH_DIR:-/tmp/dtune_pretokenize_bench}
python=${DTUNE_PYTHON:-.venv/bin/python}
mkdir -p "$work"
[[ -x "$dtune" ]] || { echo "no $dtune: build it first (cmake --build $build --target dtune)" >&2; exit 1; }

# Synthetic rows: sentences drawn from the sample set's words, seeded, so every run sees the
# same bytes. ~4,400 characters of English is ~1,000 llama3 tokens.
make_rows() {  # make_rows N FILE
  "$python" - "$1" "$2" <<'PY'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1234)
# Words of the sample set (~1,000 distinct) plus random numbers: a small fixed vocabulary would
# hit the tokenizer's word cache every time and overstate its speed.
with open("data/medical_sample.json", encoding="utf-8") as f:
    words = sorted({w for r in json.load(f) for v in r.values() for w in v.split()})
words += [f"{rng.randint(1, 400)}" for _ in range(200)] + [f"{rng.randint(1, 99)}.{rng.randint(0, 9)}" for _ in range(100)]
def text(n_words):
    out = []
    while n_words > 0:
        k = min(n_words, rng.randint(8, 20))
        s = " ".join(rng.choice(words) for _ in range(k))
        out.append(s[0].upper() + s[1:] + ".")
        n_words -= k
    return " ".join(out)
with open(path, "w", encoding="utf-8") as f:
    f.write("[\n")
    for i in range(n):
        row = {"Question": text(rng.randint(40, 80)), "Complex_CoT": text(rng.randint(300, 420)),
               "Response": text(rng.randint(10, 25))}
        f.write(("  " if i == 0 else ",\n  ") + json.dumps(row, ensure_ascii=False))
    f.write("\n]\n")
PY
}

run_one() {  # run_one N
  local n=$1 input="$work/rows_$1.json" output="$work/rows_$1.h5" log="$work/time_$1.txt"
  [[ -s "$input" ]] || make_rows "$n" "$input"
  rm -f "$output"
  /usr/bin/time -v "$dtune" pretokenize --tokenizer "$tokenizer" --input "$input" \
      --output "$output" --template recipe --max-length 1024 --threads "$threads" \
      --no-progress 2> "$log" || { cat "$log" >&2; exit 1; }
  local secs cpu rss
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
  cpu=$(awk -F': ' '/(User|System) time/ {s+=$2} END {print s}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  grep '^pretokenize:' "$log" | sed 's/^/  /'
  # CPU seconds too: on a shared machine wall time measures the neighbours as much as dtune.
  printf '%6d rows: %6.1f s wall, %7.0f rows/s, %6.1f CPU s (%5.0f rows per CPU s), peak RSS %6.1f MiB, input %4.0f MiB, output %4.0f MiB\n' \
      "$n" "$secs" "$(echo "$n / $secs" | bc -l)" "$cpu" "$(echo "$n / $cpu" | bc -l)" "$(echo "$rss / 1024" | bc -l)" \
      "$(echo "$(stat -c %s "$input") / 1048576" | bc -l)" "$(echo "$(stat -c %s "$output") / 1048576" | bc -l)"
}

echo "dtune pretokenize bench: $(date -I), $(nproc) CPUs, threads=$threads, $(uname -m)"
run_one 5000
run_one 25000
