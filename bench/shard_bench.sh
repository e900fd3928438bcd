#!/usr/bin/env bash
# train.sharding on CPU, side by side in one run: SmolLM2-135M LoRA (the demo config), the same
# global batch on 2 and on 4 ranks, sharding none vs full. Prints, per rank count, the median
# step time of each and their ratio (goal: full <= 1.3x none), and the frozen-weight bytes rank 0
# holds (goal: <= 1/W of the base + 2 layers) with the peak resident memory of rank 0.
#   bash bench/shard_bench.sh [STEPS]     (default 6; run from anywhere; builds nothing)
# Needs build/bin/dtune, models/SmolLM2-135M-Instruct and out/medical_sample.h5 (scripts/demo.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-6}
DTUNE=build/bin/dtune
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# $(date -u +%F) $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores); $STEPS steps, SmolLM2-135M, fp32"
echo "| ranks | rows/rank | none step_s | full step_s | full/none | rank 0 frozen MiB (full / none) | rank 0 peak RSS GiB (full / none) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for np in 2 4; do
  micro=$((4 / np))
  declare -A step mem frozen
  for mode in none full; do
    out="$tmp/$mode$np"
    mpirun --bind-to none -np "$np" "$DTUNE" train --config configs/smollm2_lora_demo.ini --checkpoint.output_dir="$out" \
      --train.max_steps="$STEPS" --train.sharding=$mode --data.micro_batch_size=$micro --train.eval_every=0 \
      --checkpoint.save_every=0 --generate.enabled=false --log.progress=lines --log.tensorboard=false \
      --train.threads=1 > "$out.log" 2>&1 || { tail -20 "$out.log"; exit 1; }
    # Median step time of the steps after the first (which includes connection set-up).
    step[$mode]=$(python3 -c "import json,statistics,sys; r=[json.loads(l) for l in open(sys.argv[1])];
s=[x['step_s'] for x in r if x['kind']=='train'][1:]; print(f'{statistics.median(s):.3f}')" "$out/metrics.jsonl")
    mem[$mode]=$(python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])];
print(f\"{max(x['peak_mem_gib'] for x in r if x['kind']=='train'):.2f}\")" "$out/metrics.jsonl")
    if [ $mode = full ]; then
      frozen[$mode]=$(sed -n 's/.*this rank holds \([0-9.]*\) MiB of its \([0-9.]*\) MiB.*/\1/p' "$out.log" | head -1)
      frozen[none]=$(sed -n 's/.*this rank holds \([0-9.]*\) MiB of its \([0-9.]*\) MiB.*/\2/p' "$out.log" | head -1)
    fi
  done
  ratio=$(python3 -c "print(f'{${step[full]} / ${step[none]}:.2f}')")
  echo "| $np | $micro | ${step[none]} | ${step[full]} | $ratio | ${frozen[full]} / ${frozen[none]} | ${mem[full]} / ${mem[none]} |"
done
