#!/usr/bin/env bash
# All-reduce share of a dtune training step on CPU: mean(allreduce_s) / mean(step_s) of rank 0's
# metrics.jsonl, for mpirun -np 2 and -np 4 (--oversubscribe), on a tiny random Llama and on
# SmolLM2-135M-Instruct, gradient_accumulation_steps 4, LoRA r=4 on q_proj,v_proj, fp32.
#
#   bash bench/allreduce_share.sh [STEPS=4] [MICRO_BATCH=1] [WORKDIR=/tmp/dtune_allreduce_bench]
#   (settings are environment variables: STEPS=6 bash bench/allreduce_share.sh)
#
# The MPI all-reduce time is the whole collective on rank 0, so it includes waiting for the
# slowest rank to arrive: on an oversubscribed or loaded machine it measures load imbalance as much
# as communication. Each rank gets --train.threads=1. The first step (warm-up) is reported apart.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dtune="${DTUNE:-$root/build/bin/dtune}"
py="$root/.venv/bin/python"
steps="${STEPS:-4}"
micro="${MICRO_BATCH:-1}"
work="${WORKDIR:-/tmp/dtune_allreduce_bench}"
smollm="$root/models/SmolLM2-135M-Instruct"
mkdir -p "$work"
# Open MPI refuses root without these (containers run as root).
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

[ -d "$work/tiny" ] || "$py" "$root/scripts/make_tiny_model.py" --arch llama --output "$work/tiny" \
    --tokenizer "$smollm" >/dev/null
[ -f "$work/data.h5" ] || "$dtune" pretokenize --tokenizer "$smollm" --input "$root/data/medical_sample.json" \
    --output "$work/data.h5" --max-length 512 --no-progress >/dev/null

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-4s %10s %13s %8s %15s %s\n' model np "step_s" "allreduce_s" share "share (no 1st)" load1
for model in tiny smollm2; do
  path="$work/tiny"; [ "$model" = smollm2 ] && path="$smollm"
  for np in 2 4; do
    out="$work/run_${model}_np$np"
    rm -rf "$out"
    extra=(); [ "$np" -gt 2 ] && extra=(--oversubscribe)
    cmd=(mpirun -np "$np" "${extra[@]}" --bind-to none "$dtune" train --model.path="$path"
         --data.path="$work/data.h5" --data.micro_batch_size="$micro" --data.packing=false
         --lora.r=4 --lora.alpha=16 --lora.dropout=0.1 --lora.target_modules=q_proj,v_proj
         --train.device=cpu --train.precision=fp32 --train.gradient_checkpointing=false
         --train.gradient_accumulation_steps=4 --train.max_steps="$steps" --train.eval_every=0
         --train.threads=1 --checkpoint.output_dir="$out" --checkpoint.save_every=0
         --generate.enabled=false --log.tensorboard=false --log.progress=off)
    echo "${cmd[*]}" > "$out.cmd"
    "${cmd[@]}" > "$out.log" 2>&1 || { echo "failed: see $out.log"; tail -20 "$out.log"; exit 1; }
    "$py" - "$out/metrics.jsonl" "$model" "$np" <<'EOF'
import json, os, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
def share(s):
    st = sum(x["step_s"] for x in s) / len(s); ar = sum(x["allreduce_s"] for x in s) / len(s)
    return st, ar, ar / st
st, ar, sh = share(steps)
rest = f"{100 * share(steps[1:])[2]:14.2f}%" if len(steps) > 1 else f"{'-':>15}"
print(f"{sys.argv[2]:<8} {sys.argv[3]:<4} {st:10.3f} {ar:13.5f} {100 * sh:7.2f}% {rest} {os.getloadavg()[0]:.2f}")
EOF
  done
done
echo "commands: $work/run_*.cmd; logs: $work/run_*.log"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
