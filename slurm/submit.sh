#!/usr/bin/env bash
# Submit the whole pipeline: pretokenize INPUT for CONFIG's model into CONFIG's data.path, then
# fine-tune once that job has succeeded (sbatch --dependency=afterok).
#
#   slurm/submit.sh CONFIG INPUT.json[l] [dtune pretokenize options ...]
#   slurm/submit.sh configs/deepseek_r1_distill_llama8b_recipe.ini out/medical-o1-reasoning-SFT/medical_o1_sft.json \
#       --template recipe --max-length 1024 --eval-fraction 0
#
# Environment:
#   DTUNE                  the binary (default build/bin/dtune)
#   PRETOKENIZE_SBATCH     extra sbatch flags for the pretokenize job (e.g. "--partition=cpu")
#   FINETUNE_SBATCH        extra sbatch flags for the training job (e.g. "--nodes=4 --time=12:00:00")
#   FORCE_PRETOKENIZE=1    pretokenize even if data.path exists (default: reuse it)
# Prints both job ids; the training job stays pending until the data is written, and is
# cancelled (not left pending forever) if pretokenization fails.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
config=$1 input=$2; shift 2
DTUNE=${DTUNE:-build/bin/dtune}
[ -x "$DTUNE" ] || { echo "submit.sh: $DTUNE not found; build first (README) or set DTUNE" >&2; exit 2; }
[ -f "$input" ] || { echo "submit.sh: input $input not found" >&2; exit 2; }
get() { "$DTUNE" config --config "$config" --no-validate --get "$1"; }
model=$(get model.path)
tokenizer=$(get model.tokenizer)
data=$(get data.path)

dependency=()
if [ -e "$data" ] && [ "${FORCE_PRETOKENIZE:-0}" != 1 ]; then
  echo "submit.sh: $data exists; reusing it (FORCE_PRETOKENIZE=1 to redo)" >&2
else
  # shellcheck disable=SC2086  # the *_SBATCH variables are flag lists
  pre=$(sbatch --parsable ${PRETOKENIZE_SBATCH:-} slurm/pretokenize.sh "${tokenizer:-$model}" "$input" "$data" "$@")
  echo "pretokenize job $pre: $input -> $data"
  dependency=(--dependency="afterok:${pre%%;*}" --kill-on-invalid-dep=yes)
fi
# shellcheck disable=SC2086
train=$(sbatch --parsable "${dependency[@]}" ${FINETUNE_SBATCH:-} slurm/finetune.sh "$config")
echo "finetune job ${train%%;*}: $config"
