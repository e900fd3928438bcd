#!/usr/bin/env bash
# The README's main job on the embedded default (SmolLM2-135M-Instruct, CPU, 2 MPI ranks):
# setup, build, pretokenize the sample medical set, LoRA-train, checkpoint, answer the recipe's
# test question, saying what each step runs.
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== demo: %s\n' "$*"; }

step "setup (idempotent): Debian packages, .venv with torch, models/SmolLM2-135M-Instruct"
bash scripts/setup.sh

step "build build/bin/dtune (only what the demo runs; scripts/test.sh reuses these objects)"
bash scripts/build.sh dtune
dtune=build/bin/dtune

step "what this binary is: dtune info"
"$dtune" info

config=configs/smollm2_lora_demo.ini
step "resolve and validate the demo config: dtune config --config $config"
"$dtune" config --config "$config" | sed 's/^/  /'

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p out
step "pretokenize data/medical_sample.json with the model's own tokenizer.json -> out/medical_sample.h5"
"$dtune" pretokenize --tokenizer models/SmolLM2-135M-Instruct --input data/medical_sample.json \
  --output out/medical_sample.h5 --template recipe --max-length 512 --eval-fraction 0.1 --seed 42
out_dir=$("$dtune" config --config "$config" --get checkpoint.output_dir)
if [ -d "$out_dir" ]; then
  step "a fresh demo run: removing the previous demo's $out_dir (dtune refuses to start over an earlier run)"
  rm -rf "$out_dir"
fi
step "LoRA training on 2 MPI ranks (CPU): mpirun -np 2 $dtune train --config $config"
mpirun -np 2 --bind-to none "$dtune" train --config "$config"
step "done: adapter and checkpoints in out/smollm2_demo/, the answer in out/smollm2_demo/generation.txt"
