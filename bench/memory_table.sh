#!/usr/bin/env bash
# The predicted memory per GPU of LoRA runs on DeepSeek-R1-Distill-Llama-8B, -Qwen-32B and
# -Llama-70B, at 1, 2, 4 and 8 GPUs per shard group, with and without gradient checkpointing:
# `dtune config --memory` on the shapes in bench/model-configs (the models' config.json), the
# recipe's LoRA (r=4 on q_proj,v_proj), bf16, 1 row of 1024 tokens per micro-batch. Prints the
# Markdown table docs/HPC.md holds. No GPU and no weights needed.
#   bash bench/memory_table.sh [DTUNE_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
DTUNE=${1:-build/bin/dtune}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| model | GPUs per shard group | checkpointing | base | gathered | LoRA+AdamW | activations | loss chunk | total (GiB) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for m in deepseek-r1-distill-llama-8b deepseek-r1-distill-qwen-32b deepseek-r1-distill-llama-70b; do
  mkdir -p "$tmp/$m" && cp "bench/model-configs/$m.json" "$tmp/$m/config.json"
  for g in 1 2 4 8; do
    for ckpt in true false; do
      sharding=hybrid
      [ "$g" = 1 ] && sharding=none
      out=$("$DTUNE" config --config configs/deepseek_r1_distill_llama8b_recipe.ini --memory --max-length 1024 \
              --world-size "$g" --ranks-per-node "$g" --gpu-memory-gib 100000 --model.path="$tmp/$m" \
              --train.precision=bf16 --train.sharding=$sharding --data.micro_batch_size=1 \
              --train.gradient_checkpointing=$ckpt)
      val() { awk -v k="$1" 'index($0, k) { for (i = 1; i <= NF; ++i) if ($(i+1) == "GiB") { print $i; exit } }' <<<"$out"; }
      echo "| $m | $g | $ckpt | $(val 'frozen base') | $(val gathered) | $(val LoRA) | $(val activations) | $(val 'loss chunk') | $(val total) |"
    done
  done
done
