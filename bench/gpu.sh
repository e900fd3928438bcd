#!/usr/bin/env bash
# dtune train against transformers + peft on one GPU (issue 8), in ONE device call: unpacks the
# carried dtune (.carry/dtune-carry.tar.gz, made HERE by bench/gpu_carry.sh), checks it loads and
# trains (an MPI singleton with the NCCL communicator, world size 1, no mpirun), makes random
# bf16 models with the shapes of DeepSeek-R1-Distill-Llama-8B and -Qwen-1.5B
# (bench/model-configs/) and synthetic pre-tokenized data on the device, then runs each
# configuration with dtune and with bench/gpu_peer.py, and prints one table (bench/gpu_report.py):
# tokens/s per GPU, MFU (dtune's formula), peak memory, dtune/peer ratios. Before the runs, short
# first-contact checks (issue 22): the MFU peak's SKU, train.deterministic=true with sampled
# generation, a CPU checkpoint resumed on the GPU, fp16 skip-and-halve (issue 17), and
# train.sharding=full at world size 1 against none (issue 16). docs/bench/GPU.md says how to call it.
#
#   bash bench/gpu_carry.sh && bash bench/gpu.sh          # on the device: see docs/bench/GPU.md
#   DRY_RUN=1 bash bench/gpu.sh                           # here: the same plumbing on CPU, tiny
#
# Configurations (LoRA alpha 16, dropout 0.1, 2 rows or packed sequences x 4 accumulation,
# AdamW lr 1e-4 wd 0.01, linear schedule, clip 0.3, in both trainers):
#   a  the recipe: fp16 (loss scaling), r=4 on q_proj,v_proj, rows of SEQ_A=1024 tokens,
#      gradient checkpointing; Llama-8B shape
#   b  bf16, r=16 on all linear layers (q,k,v,o,gate,up,down), rows packed into PACK_B=2048-token
#      sequences, checkpointing CKPT_B (default off); MODELS_B="llama-8b qwen-1.5b"
# Settings (environment): WARMUP=3 STEPS=10 (timed optimizer steps after the warm-up ones),
# MICRO_BATCH=2 ACCUM=4 SEQ_A=1024 PACK_B=2048 CKPT_A=1 CKPT_B=0 PRECISION_A=fp16 PRECISION_B=bf16
# CKPT_EVERY=1 (dtune's train.activation_checkpoint_every: 2 = recompute every other layer; the peer always
# recomputes every layer, so a run with 2 measures that lever against transformers' default)
# CONFIGS="a b" MODELS_B="llama-8b qwen-1.5b" SIDES="dtune peer" PEAK_TFLOPS=989
# BUDGET_S=480 (the whole script; a run that would start with too little left is skipped and
# reported so) RUN_CAP_S=170 (one run, model load included) PYTHON=python3 WORK=/tmp/dtune_gpu
# OUT (the device's $OUT; here /tmp/dtune_gpu_out). DRY_RUN=1: CPU, fp32, tiny shapes (hidden 64,
# 2 layers, vocab 512), SEQ_A=128 PACK_B=256 WARMUP=1 STEPS=2, .venv's python.
# Results: $OUT/gpu_bench.log (all output), $OUT/gpu_bench.json (every number), $OUT/runs.tar.gz
# (each run's metrics and log). Exit code 0 when every run finished, 1 otherwise.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 1
t_begin=$(date +%s)
dry=${DRY_RUN:-0}
out=${OUT:-/tmp/dtune_gpu_out}
work=${WORK:-/tmp/dtune_gpu}
mkdir -p "$out" "$work"
if [ -z "${GPU_SH_LOGGED:-}" ]; then  # everything also goes to $OUT/gpu_bench.log, which comes back
  GPU_SH_LOGGED=1 bash "$0" "$@" 2>&1 | tee "$out/gpu_bench.log"
  exit "${PIPESTATUS[0]}"
fi
rm -rf "$work/runs" "$work/runs.jsonl"
mkdir -p "$work/runs"
touch "$work/runs.jsonl"

if [ "$dry" = 1 ]; then
  python=${PYTHON:-$root/.venv/bin/python}; device=cpu; tiny=--tiny; model_dtype=float32
  prec_a=${PRECISION_A:-fp32}; prec_b=${PRECISION_B:-fp32}; seq_a=${SEQ_A:-128}; pack_b=${PACK_B:-256}
  warmup=${WARMUP:-1}; steps=${STEPS:-2}; threads=${THREADS:-2}; budget=${BUDGET_S:-1200}; run_cap=${RUN_CAP_S:-300}
else
  python=${PYTHON:-python3}; device=cuda; tiny=; model_dtype=bfloat16
  prec_a=${PRECISION_A:-fp16}; prec_b=${PRECISION_B:-bf16}; seq_a=${SEQ_A:-1024}; pack_b=${PACK_B:-2048}
  warmup=${WARMUP:-3}; steps=${STEPS:-10}; threads=0; budget=${BUDGET_S:-480}; run_cap=${RUN_CAP_S:-170}
fi
micro=${MICRO_BATCH:-2}; accum=${ACCUM:-4}; ckpt_a=${CKPT_A:-1}; ckpt_b=${CKPT_B:-0}
attention_b=${ATTENTION_B:-auto}  # dtune's model.attention in (b); reference if the packed check fails
ckpt_every=${CKPT_EVERY:-1}  # dtune only: with checkpointing on, recompute every Nth layer
configs=${CONFIGS:-a b}; models_b=${MODELS_B:-llama-8b qwen-1.5b}; sides=${SIDES:-dtune peer}
peak=${PEAK_TFLOPS:-989}; min_run=${MIN_RUN_S:-40}
export PYTHONUNBUFFERED=1

elapsed() { echo $(( $(date +%s) - t_begin )); }
say() { echo "[gpu.sh +$(elapsed)s] $*"; }

# ---- 1. The machine ---------------------------------------------------------------------------
say "DRY_RUN=$dry device=$device; $(date -u +%Y-%m-%dT%H:%M:%SZ); budget ${budget}s"
ldd --version 2>&1 | head -1
echo "$(uname -srm); $(nproc) cores; $(free -g | awk '/^Mem:/ {print $2 " GiB RAM"}'); $work: $(df -h "$work" | awk 'NR==2 {print $4 " free"}')"
if [ "$device" = cuda ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm --format=csv 2>&1 || true
fi
"$python" - "$work/env.json" "$dry" "$peak" <<'EOF' || { echo "FATAL: $python cannot import the peer's stack"; exit 1; }
import json, platform, sys
import torch, transformers, peft, h5py, safetensors
env = {"dry_run": sys.argv[2] == "1", "peak_tflops": float(sys.argv[3]), "python": platform.python_version(),
       "torch": torch.__version__, "cuda": torch.version.cuda, "transformers": transformers.__version__,
       "peft": peft.__version__, "h5py": h5py.__version__, "safetensors": safetensors.__version__,
       "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
       "glibc": platform.libc_ver()[1]}
json.dump(env, open(sys.argv[1], "w"))
print("python stack:", " ".join(f"{k}={v}" for k, v in env.items()))
EOF

# ---- 2. The carried dtune: unpack, check it loads, smoke-train ------------------------------------
dtune_ok=1
carry=${CARRY_DIR:-/tmp/dtune-carry}
if [ ! -f .carry/dtune-carry.tar.gz ]; then
  echo "FATAL: no .carry/dtune-carry.tar.gz: run 'bash bench/gpu_carry.sh' here first and name .carry in carry"
  dtune_ok=0
else
  rm -rf "$carry" && mkdir -p "$carry" && tar -C "$carry" -xzf .carry/dtune-carry.tar.gz
  sed 's/^/  carried: /' "$carry/MANIFEST"
  "$python" - "$work/env.json" "$carry/MANIFEST" <<'EOF'
import json, sys
env = json.load(open(sys.argv[1]))
env["carried"] = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[2]) if "=" in l)
json.dump(env, open(sys.argv[1], "w"))
EOF
  need=$(sed -n 's/^needs_glibc=GLIBC_//p' "$carry/MANIFEST")
  have=$(ldd --version 2>&1 | head -1 | awk '{print $NF}')
  if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
    echo "FATAL: this glibc is $have; the carried binaries need $need: build dtune on the device instead"
    dtune_ok=0
  fi
fi
site=$("$python" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
compat=
if [ "$dtune_ok" = 1 ]; then
  # shellcheck source=bench/gpu_env.sh
  source bench/gpu_env.sh
  missing=$( (dtune_env "$carry" "$site"; ldd "$carry/bin/dtune") 2>&1 | grep -E "not found" )
  if [ -n "$missing" ]; then  # e.g. an older libstdc++ than Debian 12's: try the carried one
    compat=compat
    missing=$( (dtune_env "$carry" "$site" compat; ldd "$carry/bin/dtune") 2>&1 | grep -E "not found" )
  fi
  if [ -n "$missing" ]; then
    echo "FATAL: the carried dtune cannot load here (LD_LIBRARY_PATH: .carry libs, $site/torch/lib, nvidia/*/lib):"
    echo "$missing"
    dtune_ok=0
  fi
fi
cat > "$work/dtune.sh" <<EOF
#!/usr/bin/env bash
# The carried dtune with its environment (written by bench/gpu.sh).
source "$root/bench/gpu_env.sh"
dtune_env "$carry" "$site" $compat
exec "$carry/bin/dtune" "\$@"
EOF
chmod +x "$work/dtune.sh"
if [ "$dtune_ok" = 1 ]; then
  say "dtune loads (compat libstdc++: ${compat:-no})"
  "$work/dtune.sh" info
  # A tiny model, 2 steps, the real precision and device: MPI singleton, NCCL at world size 1, CUDA.
  "$python" bench/gpu_make.py model --config bench/model-configs/deepseek-r1-distill-llama-8b.json --tiny \
    --dtype float32 --device cpu --output "$work/smoke_model" > /dev/null
  "$python" bench/gpu_make.py data --kind padded --rows 8 --seq 64 --vocab 512 --output "$work/smoke.h5" > /dev/null
  smoke() {
    rm -rf "$work/smoke_run"
    timeout -k 5 120 "$work/dtune.sh" train --model.path="$work/smoke_model" --data.path="$work/smoke.h5" \
      --data.micro_batch_size=2 --data.shuffle=false --train.device="$device" --train.precision="$prec_a" \
      --train.max_steps=2 --train.gradient_accumulation_steps=1 --train.eval_every=0 \
      --checkpoint.output_dir="$work/smoke_run" --generate.enabled=false --log.tensorboard=false \
      --log.progress=lines > "$work/smoke.log" 2>&1
  }
  if smoke; then
    say "smoke train OK: $(grep -m1 communicator "$work/smoke.log")"
  else
    sed 's/^/  smoke: /' "$work/smoke.log" | tail -30
    dtune_ok=0
    if [ "$device" = cuda ]; then  # NCCL's bootstrap may find no usable interface in a VM
      say "smoke train failed; again with NCCL_SOCKET_IFNAME=lo NCCL_IB_DISABLE=1 NCCL_DEBUG=INFO"
      export NCCL_SOCKET_IFNAME=lo NCCL_IB_DISABLE=1 NCCL_DEBUG=INFO
      if smoke; then
        say "smoke train OK with NCCL on lo: $(grep -m1 communicator "$work/smoke.log")"
        export NCCL_DEBUG=WARN
        dtune_ok=1
      else
        sed 's/^/  smoke: /' "$work/smoke.log" | tail -40
      fi
    fi
    [ "$dtune_ok" = 1 ] || echo "FATAL: dtune smoke train failed; the peer still runs"
  fi
  if [ "$dtune_ok" = 1 ] && [ "$device" = cuda ]; then
    # The same 2 steps in libtorch's CUDA sync debug mode around each step's forward/backward
    # (dist::HostSyncCheck): any op that makes the host wait for the GPU there throws, named.
    cp "$work/smoke.log" "$work/smoke_first.log"
    if DTUNE_CUDA_SYNC_CHECK=1 smoke; then
      say "host-sync check OK: no synchronisation inside the step's forward/backward passes"
    else
      say "host-sync check FAILED (a synchronising op inside the step; training itself is unaffected):"
      grep -i -m5 -B2 "synchroniz" "$work/smoke.log" | sed 's/^/  sync: /'
    fi
    mv "$work/smoke.log" "$work/smoke_sync_check.log"; mv "$work/smoke_first.log" "$work/smoke.log"
  fi
  if [ "$dtune_ok" = 1 ]; then
    # First contact (issue 22); each check prints OK or FAILED and none stops the benchmark.
    say "peak for MFU: $(grep -m1 -E 'MFU against|no known peak' "$work/smoke.log" || echo '(no line)')"
    # (a) train.deterministic=true, then the generation test, sampled (top-p, repetition penalty),
    #     on a tiny model with the Llama 3.1 vocabulary and tokenizer: libtorch refuses top-p's
    #     cumsum on CUDA in deterministic mode, so this proves the processors run on the host.
    "$python" bench/gpu_make.py model --config bench/model-configs/deepseek-r1-distill-llama-8b.json --tiny \
      --vocab 128256 --dtype float32 --device cpu --output "$work/smoke_model_tok" > /dev/null
    rm -rf "$work/smoke_det"
    if timeout -k 5 150 "$work/dtune.sh" train --model.path="$work/smoke_model_tok" \
         --model.tokenizer=tests/fixtures/tokenizers/llama3_1 --data.path="$work/smoke.h5" --data.micro_batch_size=2 \
         --data.shuffle=false --train.device="$device" --train.precision="$prec_b" --train.max_steps=2 \
         --train.gradient_accumulation_steps=1 --train.eval_every=0 --train.deterministic=true \
         --checkpoint.output_dir="$work/smoke_det" --generate.enabled=true --generate.prompt_template=none \
         --generate.max_new_tokens=16 --generate.temperature=0.7 --generate.top_p=0.9 --generate.repetition_penalty=1.1 \
         --log.tensorboard=false --log.progress=lines > "$work/smoke_det.log" 2>&1 \
       && [ -s "$work/smoke_det/generation.txt" ]; then
      say "deterministic run + sampled generation OK"
    else
      say "deterministic run + sampled generation FAILED:"; tail -15 "$work/smoke_det.log" | sed 's/^/  | /'
    fi
    # (b) a checkpoint written on the CPU resumed on $device: CPU and CUDA dropout generators
    #     differ, so the run must continue with a warning (a new dropout stream), not stop inside c10.
    rm -rf "$work/smoke_xdev"
    xdev() {  # xdev DEVICE LOG [OPTIONS]
      local dev=$1 log=$2; shift 2
      timeout -k 5 120 "$work/dtune.sh" train --model.path="$work/smoke_model" --data.path="$work/smoke.h5" \
        --data.micro_batch_size=2 --data.shuffle=false --train.device="$dev" --train.precision=fp32 \
        --train.max_steps=2 --train.gradient_accumulation_steps=1 --train.eval_every=0 --lora.dropout=0.1 \
        --checkpoint.output_dir="$work/smoke_xdev" --checkpoint.save_every=1 --generate.enabled=false \
        --log.tensorboard=false --log.progress=lines "$@" > "$work/$log" 2>&1
    }
    if xdev cpu smoke_xdev_cpu.log && xdev "$device" smoke_xdev_resume.log --checkpoint.resume="$work/smoke_xdev/checkpoint-1"; then
      say "CPU checkpoint resumed on $device OK: $(grep -m1 -o 'dropout RNG state from [a-z ]*' "$work/smoke_xdev_resume.log" || echo 'same generator, restored exactly')"
    else
      say "CPU checkpoint resumed on $device FAILED:"; tail -15 "$work/smoke_xdev_resume.log" | sed 's/^/  | /'
    fi
    # (c) fp16 loss scaling on $device (issue 17): train.loss_scale_init = 2^40 overflows every
    #     fp16 gradient, so each of 3 steps is skipped on every rank and the scale halves:
    #     metrics.jsonl holds 2^39, 2^38, 2^37 and the log a skip warning per step (the same
    #     check as train_e2e_test's on the CPU; here the device's fp16 kernels and inf check).
    rm -rf "$work/smoke_fp16_skip"
    if timeout -k 5 120 "$work/dtune.sh" train --model.path="$work/smoke_model" --data.path="$work/smoke.h5" \
         --data.micro_batch_size=2 --data.shuffle=false --train.device="$device" --train.precision=fp16 \
         --train.loss_scale_init=1099511627776 --train.max_steps=3 --train.gradient_accumulation_steps=1 \
         --train.eval_every=0 --checkpoint.output_dir="$work/smoke_fp16_skip" --generate.enabled=false \
         --log.tensorboard=false --log.progress=lines > "$work/smoke_fp16_skip.log" 2>&1 \
       && "$python" - "$work/smoke_fp16_skip/metrics.jsonl" "$work/smoke_fp16_skip.log" <<'PY'
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if r["kind"] == "train"]
log = open(sys.argv[2]).read()
scales = [r["loss_scale"] for r in rows]
skipped = sum(f"step {i}: non-finite gradients, step skipped on every rank" in log for i in (1, 2, 3))
print(f"  fp16 loss scales {scales} (want 2^39, 2^38, 2^37); {skipped} of 3 steps skipped")
sys.exit(0 if scales == [2.0 ** 39, 2.0 ** 38, 2.0 ** 37] and skipped == 3 else 1)
PY
    then
      say "fp16 skip-and-halve on $device OK"
    else
      say "fp16 skip-and-halve on $device FAILED:"; tail -15 "$work/smoke_fp16_skip.log" | sed 's/^/  | /'
    fi
    # (d) train.sharding=full at world size 1: the gather path (NCCL all-gather on the side
    #     stream, storage freed and refilled per layer, re-gathered in backward) must train as
    #     train.sharding=none, with and without gradient checkpointing (issue 16).
    shard_smoke() {  # shard_smoke SHARDING CKPT
      rm -rf "$work/smoke_shard_$1_$2"
      timeout -k 5 120 "$work/dtune.sh" train --model.path="$work/smoke_model" --data.path="$work/smoke.h5" \
        --data.micro_batch_size=2 --data.shuffle=false --train.device="$device" --train.precision=fp32 \
        --train.max_steps=3 --train.gradient_accumulation_steps=2 --train.eval_every=0 --lora.dropout=0 \
        --train.sharding="$1" --train.gradient_checkpointing="$2" --checkpoint.output_dir="$work/smoke_shard_$1_$2" \
        --generate.enabled=false --log.tensorboard=false --log.progress=lines > "$work/smoke_shard_$1_$2.log" 2>&1
    }
    for ckpt in false true; do
      if shard_smoke none $ckpt && shard_smoke full $ckpt && "$python" bench/gpu_compare_steps.py \
           "$work/smoke_shard_none_$ckpt/metrics.jsonl" "$work/smoke_shard_full_$ckpt/metrics.jsonl" --limit 1e-5; then
        say "sharded gather path (world 1, checkpointing $ckpt) OK: equals train.sharding=none"
      else
        say "sharded gather path (world 1, checkpointing $ckpt) FAILED:"
        tail -15 "$work/smoke_shard_full_$ckpt.log" | sed 's/^/  | /'
      fi
    done
  fi
  if [ "$dtune_ok" = 1 ] && [[ " $configs " == *" b "* ]]; then
    # Packed rows: dtune's attention (flash varlen on CUDA, the fused kernel on CPU) against
    # libtorch's SDPA with a mask, 2 steps with LoRA dropout 0. The step-1 loss and gradient norm
    # and the step-2 loss (after one update) must agree, or (b) runs with model.attention=reference.
    "$python" bench/gpu_make.py data --kind packed --rows 8 --seq 128 --vocab 512 --output "$work/smoke_packed.h5" > /dev/null
    packed_smoke() {  # packed_smoke ATTENTION
      rm -rf "$work/smoke_packed_$1"
      timeout -k 5 120 "$work/dtune.sh" train --model.path="$work/smoke_model" --data.path="$work/smoke_packed.h5" \
        --data.packing=true --data.pack_length=128 --data.micro_batch_size=2 --data.shuffle=false --lora.r=16 \
        --lora.dropout=0 --lora.target_modules=q_proj,k_proj,v_proj,o_proj --model.attention="$1" \
        --train.device="$device" --train.precision="$prec_b" --train.max_steps=2 --train.gradient_accumulation_steps=1 \
        --train.eval_every=0 --checkpoint.output_dir="$work/smoke_packed_$1" --generate.enabled=false \
        --log.tensorboard=false --log.progress=lines > "$work/smoke_packed_$1.log" 2>&1
    }
    if packed_smoke auto && packed_smoke sdpa; then
      if "$python" bench/gpu_compare_steps.py "$work/smoke_packed_auto/metrics.jsonl" \
           "$work/smoke_packed_sdpa/metrics.jsonl" --limit 3e-2; then
        say "packed attention check OK: (b) runs with model.attention=$attention_b"
      else
        attention_b=reference
        say "packed attention check FAILED (numbers above): (b) runs with model.attention=reference"
      fi
    else
      attention_b=reference
      say "packed attention smoke failed (smoke_packed_*.log): (b) runs with model.attention=reference"
      tail -15 "$work/smoke_packed_auto.log" | sed 's/^/  | /'
    fi
  fi
fi

# ---- 3. Models and data ------------------------------------------------------------------------------
make_model() {  # make_model NAME: reuses a folder made by the same command (gpu_make.py's stamp)
  say "model $1"
  "$python" bench/gpu_make.py model --config "bench/model-configs/deepseek-r1-distill-$1.json" \
    --output "$work/models/$1" --dtype "$model_dtype" --device "$device" $tiny
}
vocab_of() { "$python" -c "import json,sys; print(512 if '$tiny' else json.load(open(sys.argv[1]))['vocab_size'])" \
  "bench/model-configs/deepseek-r1-distill-$1.json"; }
n_seqs=$(( (warmup + steps) * micro * accum ))
if [[ " $configs " == *" a "* ]]; then
  "$python" bench/gpu_make.py data --kind padded --rows "$n_seqs" --seq "$seq_a" --vocab "$(vocab_of llama-8b)" \
    --output "$work/data_a.h5" || exit 1
fi
if [[ " $configs " == *" b "* ]]; then
  vocab_b=$(for m in $models_b; do vocab_of "$m"; done | sort -n | head -1)
  "$python" bench/gpu_make.py data --kind packed --rows "$n_seqs" --seq "$pack_b" --vocab "$vocab_b" \
    --output "$work/data_b.h5" || exit 1
fi

# ---- 4. The runs ----------------------------------------------------------------------------------------
all_ok=1
run_side() {  # run_side CONFIG MODEL SIDE
  local config=$1 model=$2 side=$3 kind prec r targets pack ckpt data dir left t rc status base= attention=auto
  local gpu_mem=null sampler="" wall=0
  if [ "$config" = a ]; then
    kind=padded prec=$prec_a r=4 targets=q_proj,v_proj pack=$seq_a ckpt=$ckpt_a data=$work/data_a.h5
  else
    kind=packed prec=$prec_b r=16 targets=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj
    pack=$pack_b ckpt=$ckpt_b data=$work/data_b.h5 attention=$attention_b
  fi
  dir=$work/runs/${config}_${model}_$side
  mkdir -p "$dir"
  left=$(( budget - $(elapsed) - 15 ))
  t=$(( left < run_cap ? left : run_cap ))
  if [ "$model_ok" != 1 ]; then
    status=no-model
  elif [ "$side" = dtune ] && [ "$dtune_ok" != 1 ]; then
    status=no-dtune
  elif [ "$t" -lt "$min_run" ]; then
    status=skipped
  else
    say "run $config $model $side ($prec, r=$r, $kind$([ "$side" = dtune ] && echo ", attention $attention"), limit ${t}s)"
    if [ "$device" = cuda ] && command -v nvidia-smi > /dev/null; then
      base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1)
      nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 250 > "$dir/nvsmi.txt" 2>/dev/null &
      sampler=$!
    fi
    local t0
    t0=$(date +%s)
    if [ "$side" = dtune ]; then
      local extra=(); [ "$device" = cpu ] && extra=(--train.threads="$threads")
      timeout -k 10 "$t" "$work/dtune.sh" train --model.path="$work/models/$model" --data.path="$data" \
        --data.micro_batch_size="$micro" --data.packing="$([ "$kind" = packed ] && echo true || echo false)" \
        --data.pack_length="$pack" --data.shuffle=false --lora.r="$r" --lora.alpha=16 --lora.dropout=0.1 \
        --lora.target_modules="$targets" --train.device="$device" --train.precision="$prec" \
        --train.gradient_checkpointing="$([ "$ckpt" = 1 ] && echo true || echo false)" \
        --train.activation_checkpoint_every="$ckpt_every" --model.attention="$attention" \
        --train.gradient_accumulation_steps="$accum" --train.max_steps=$(( warmup + steps )) \
        --train.learning_rate=1e-4 --train.weight_decay=0.01 --train.warmup_ratio=0.03 --train.lr_scheduler=linear \
        --train.max_grad_norm=0.3 --train.eval_every=0 --train.peak_tflops="$peak" "${extra[@]}" \
        --checkpoint.output_dir="$dir" --checkpoint.save_every=0 --generate.enabled=false \
        --log.tensorboard=false --log.progress=lines --log.log_every=1 > "$dir/log" 2>&1
      rc=$?
    else
      timeout -k 10 "$t" "$python" bench/gpu_peer.py --model "$work/models/$model" --data "$data" --kind "$kind" \
        --out "$dir/steps.jsonl" --precision "$prec" --lora-r "$r" --lora-alpha 16 --lora-dropout 0.1 \
        --targets "$targets" --micro-batch "$micro" --accum "$accum" --pack-length "$pack" --grad-ckpt "$ckpt" \
        --warmup "$warmup" --steps "$steps" --device "$device" --threads "$threads" > "$dir/log" 2>&1
      rc=$?
    fi
    wall=$(( $(date +%s) - t0 ))
    if [ -n "$sampler" ]; then
      kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
      local top; top=$(sort -n "$dir/nvsmi.txt" | tail -1)
      [[ "$top" =~ ^[0-9]+$ && "$base" =~ ^[0-9]+$ ]] && gpu_mem=$(( top - base ))
    fi
    case $rc in 0) status=ok ;; 124|137) status=timeout ;; *) status=failed ;; esac
    say "  $status (rc $rc, ${wall}s)"
    [ "$status" = ok ] || tail -15 "$dir/log" | sed 's/^/  | /'
    rm -rf "$dir"/checkpoint-* "$dir/adapter"  # hundreds of MB for r=16 on 8B; not needed
  fi
  [ "$status" = ok ] || all_ok=0
  printf '{"config":"%s","model":"%s","side":"%s","status":"%s","wall_s":%s,"run_dir":"%s","data":"%s","model_dir":"%s","kind":"%s","precision":"%s","lora_r":%s,"targets":"%s","micro_batch":%s,"accum":%s,"pack_length":%s,"grad_ckpt":%s,"warmup":%s,"steps":%s,"peak_tflops":%s,"gpu_mem_mib":%s}\n' \
    "$config" "$model" "$side" "$status" "$wall" "$dir" "$data" "$work/models/$model" "$kind" "$prec" "$r" \
    "$targets" "$micro" "$accum" "$pack" "$ckpt" "$warmup" "$steps" "$peak" "$gpu_mem" >> "$work/runs.jsonl"
}

for config in $configs; do
  models=llama-8b; [ "$config" = b ] && models=$models_b
  for model in $models; do
    model_ok=1
    make_model "$model" || { echo "FATAL: could not make $model"; model_ok=0; }
    for side in $sides; do run_side "$config" "$model" "$side"; done
  done
done

# ---- 5. The table ----------------------------------------------------------------------------------------
bundle=(runs runs.jsonl env.json); [ -f "$work/smoke.log" ] && bundle+=(smoke.log)
for f in smoke_packed_auto.log smoke_packed_sdpa.log; do [ -f "$work/$f" ] && bundle+=("$f"); done
[ -f "$work/smoke_sync_check.log" ] && bundle+=(smoke_sync_check.log)
for f in smoke_det.log smoke_xdev_cpu.log smoke_xdev_resume.log smoke_fp16_skip.log; do [ -f "$work/$f" ] && bundle+=("$f"); done
tar -C "$work" -czf "$out/runs.tar.gz" "${bundle[@]}"
"$python" bench/gpu_report.py --runs "$work/runs.jsonl" --json "$out/gpu_bench.json" --env "$work/env.json"
say "done; results in $out"
[ "$all_ok" = 1 ]
