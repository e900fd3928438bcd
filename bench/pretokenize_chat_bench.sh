#!/usr/bin/env bash
# `dtune pretokenize` on conversational rows (TRL `messages`) against the Python stack, side by
# side in one run: 25,000 rows of the medical-o1 size (~1,000 Llama-3 tokens each: a question,
# then an assistant turn "<think>\nCoT\n</think>\n\nanswer"), from JSONL and from Parquet, with
# the Llama 3 chat template (tests/fixtures/tokenizers/llama3_1). Two Python sides on the JSONL:
# (1) what the issue names: datasets.Dataset.from_json + .map(apply_chat_template(batch,
# tokenize=True), batched=True, batch_size=1000, num_proc=2), which writes the ids to its Arrow
# cache (cache in $work, cleared before each run); (2) the same apply_chat_template calls over a
# multiprocessing.Pool(2) without datasets' reading and cache writes. All write the same ids
# (checked on every row). Reports rows/s and peak RSS (GNU time: the largest single process);
# 5,000 rows too, to show memory flat in the size. Results: docs/bench/PRETOKENIZE_CHAT.md.
#
# Usage: bash bench/pretokenize_chat_bench.sh [build dir, default build] [threads, default 2]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=${2:-2}
dtune="$build/bin/dtune"
tokenizer=tests/fixtures/tokenizers/llama3_1
work=${BENCH_DIR:-/tmp/dtune_pretokenize_chat_bench}
python=${DTUNE_PYTHON:-.venv/bin/python}
mkdir -p "$work"
[[ -x "$dtune" ]] || { echo "no $dtune: build it first (bash scripts/build.sh dtune)" >&2; exit 1; }

make_rows() {  # make_rows N DIR -> DIR/rows_N.jsonl and DIR/rows_N.parquet
  "$python" - "$1" "$2" <<'PY'
import json, random, sys
import pyarrow as pa, pyarrow.parquet as pq
n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1234)
with open("data/medical_sample.json", encoding="utf-8") as f:
    words = sorted({w for r in json.load(f) for v in r.values() for w in v.split()})
words += [f"{rng.randint(1, 400)}" for _ in range(200)] + [f"{rng.randint(1, 99)}.{rng.randint(0, 9)}" for _ in range(100)]
def text(n_words):
    parts = []
    while n_words > 0:
        k = min(n_words, rng.randint(8, 20))
        s = " ".join(rng.choice(words) for _ in range(k))
        parts.append(s[0].upper() + s[1:] + ".")
        n_words -= k
    return " ".join(parts)
rows = [{"messages": [{"role": "user", "content": text(rng.randint(40, 80))},
                      {"role": "assistant", "content": "<think>\n" + text(rng.randint(300, 420)) + "\n</think>\n\n" +
                       text(rng.randint(10, 25))}]} for _ in range(n)]
with open(f"{out}/rows_{n}.jsonl", "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
pq.write_table(pa.Table.from_pylist(rows), f"{out}/rows_{n}.parquet", row_group_size=1000)
PY
}

# The Python stack: ids of every row, in order, to an .npy pair (offsets, tokens).
cat > "$work/python_side.py" <<'PY'
import json, sys
from multiprocessing import Pool
import numpy as np
from transformers import PreTrainedTokenizerFast

TOK = None
def init(folder):
    global TOK
    cfg = json.load(open(f"{folder}/tokenizer_config.json"))
    TOK = PreTrainedTokenizerFast(tokenizer_file=f"{folder}/tokenizer.json", bos_token=cfg["bos_token"],
                                  eos_token=cfg["eos_token"])
    TOK.chat_template = cfg["chat_template"]
def work(batch):
    out = TOK.apply_chat_template(batch, tokenize=True)
    return out["input_ids"] if hasattr(out, "keys") else out
if __name__ == "__main__":
    folder, path, out = sys.argv[1:4]
    rows = [json.loads(l)["messages"] for l in open(path, encoding="utf-8")]
    batches = [rows[i:i + 1000] for i in range(0, len(rows), 1000)]
    with Pool(2, initializer=init, initargs=(folder,)) as pool:
        ids = [r for b in pool.map(work, batches) for r in b]
    np.save(out + ".offsets.npy", np.cumsum([0] + [len(r) for r in ids]))
    np.save(out + ".tokens.npy", np.fromiter((t for r in ids for t in r), dtype=np.int32))
PY

# The issue's baseline: datasets.map over 2 processes; prints its cache files (the ids) to OUT.
cat > "$work/datasets_side.py" <<'PY'
import json, os, sys
folder, path, out, cache = sys.argv[1:5]
os.environ["HF_DATASETS_CACHE"] = cache
os.environ["HF_DATASETS_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"
import datasets
from transformers import PreTrainedTokenizerFast
datasets.disable_progress_bars()
cfg = json.load(open(f"{folder}/tokenizer_config.json"))
tok = PreTrainedTokenizerFast(tokenizer_file=f"{folder}/tokenizer.json", bos_token=cfg["bos_token"],
                              eos_token=cfg["eos_token"])
tok.chat_template = cfg["chat_template"]
def work(batch):
    ids = tok.apply_chat_template(batch["messages"], tokenize=True)
    return {"input_ids": ids["input_ids"] if hasattr(ids, "keys") else ids}
ds = datasets.Dataset.from_json(path, cache_dir=cache)
ds = ds.map(work, batched=True, batch_size=1000, num_proc=2, remove_columns=["messages"])
json.dump([f["filename"] for f in ds.cache_files], open(out, "w"))
PY

seconds() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
cpu_s() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$1"; }  # incl. waited children
rss_mib() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"; }

run_one() {  # run_one N
  local n=$1
  [[ -s "$work/rows_$n.parquet" ]] || make_rows "$n" "$work"
  for kind in jsonl parquet; do
    local log="$work/dtune_${n}_$kind.txt"
    rm -f "$work/out_${n}_$kind.h5"
    /usr/bin/time -v "$dtune" pretokenize --tokenizer "$tokenizer" --input "$work/rows_$n.$kind" \
        --output "$work/out_${n}_$kind.h5" --max-length 4096 --eval-fraction 0 --threads "$threads" \
        --no-progress 2> "$log" || { cat "$log" >&2; exit 1; }
    printf '%6d rows %-7s dtune pretokenize:             %6.1f s, %7.0f rows/s, CPU %6s s, peak RSS %6s MiB\n' \
        "$n" "$kind" "$(seconds "$log")" "$(echo "$n / $(seconds "$log")" | bc -l)" "$(cpu_s "$log")" "$(rss_mib "$log")"
  done
  local log="$work/python_$n.txt"
  /usr/bin/time -v "$python" "$work/python_side.py" "$tokenizer" "$work/rows_$n.jsonl" "$work/py_$n" 2> "$log" \
      || { cat "$log" >&2; exit 1; }
  printf '%6d rows jsonl   apply_chat_template, Pool(2):  %6.1f s, %7.0f rows/s, CPU %6s s, peak RSS %6s MiB (largest process)\n' \
      "$n" "$(seconds "$log")" "$(echo "$n / $(seconds "$log")" | bc -l)" "$(cpu_s "$log")" "$(rss_mib "$log")"
  log="$work/datasets_$n.txt"
  rm -rf "$work/hf_cache"
  /usr/bin/time -v "$python" "$work/datasets_side.py" "$tokenizer" "$work/rows_$n.jsonl" "$work/ds_$n.json" \
      "$work/hf_cache" 2> "$log" || { cat "$log" >&2; exit 1; }
  printf '%6d rows jsonl   datasets.map, num_proc=2:      %6.1f s, %7.0f rows/s, CPU %6s s, peak RSS %6s MiB (largest process)\n' \
      "$n" "$(seconds "$log")" "$(echo "$n / $(seconds "$log")" | bc -l)" "$(cpu_s "$log")" "$(rss_mib "$log")"
  "$python" - "$work/out_${n}_jsonl.h5" "$work/out_${n}_parquet.h5" "$work/py_$n" "$work/ds_$n.json" <<'PY'
import json, sys, h5py, numpy as np, pyarrow as pa, pyarrow.compute as pc
py_off, py_tok = np.load(sys.argv[3] + ".offsets.npy"), np.load(sys.argv[3] + ".tokens.npy")
col = pa.concat_arrays([c for f in json.load(open(sys.argv[4]))
                        for c in pa.ipc.open_stream(f).read_all().column("input_ids").chunks])
ds_tok = pc.list_flatten(col).to_numpy().astype(np.int32)
ds_off = np.cumsum([0] + pc.list_value_length(col).to_numpy().tolist())
assert np.array_equal(ds_off, py_off) and np.array_equal(ds_tok, py_tok), "datasets.map != Pool"
for path in sys.argv[1:3]:
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["train/offsets"][:], py_off) and np.array_equal(f["train/tokens"][:], py_tok), path
print(f"       ids equal on all {len(py_off) - 1} rows (dtune JSONL and Parquet runs vs datasets.map vs Pool)")
PY
}

echo "dtune pretokenize chat bench: $(date -u '+%F %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), threads=$threads, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run_one 5000
run_one 25000
