#!/usr/bin/env bash
# Pretokenize a dataset once, on a login node or any CPU box, with all its cores.
#   launch/pretokenize.sh MODEL_DIR INPUT.json[l] OUTPUT.h5 [dtune pretokenize options ...]
# e.g. launch/pretokenize.sh models/DeepSeek-R1-Distill-Llama-8B medical_o1_sft.json data/medical.h5 \
#        --template recipe --max-length 1024 --eval-fraction 0.02
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '2,5p' "$0"; exit 2; }
model=$1 input=$2 output=$3; shift 3
DTUNE=${DTUNE:-build/bin/dtune}
exec "$DTUNE" pretokenize --tokenizer "$model" --input "$input" --output "$output" --threads "$(nproc)" "$@"
