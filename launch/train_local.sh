#!/usr/bin/env bash
# Train on one box: one MPI rank per visible GPU, or CPU ranks when there is no GPU.
#   launch/train_local.sh configs/X.ini [--section.key=value ...]
# Environment:
#   NP          ranks to start (default: GPUs visible, else CPU_RANKS)
#   CPU_RANKS   CPU ranks when no GPU is visible (default 2); they get fp32 on the CPU
#   DTUNE       the binary (default build/bin/dtune)
# NCCL_* and CUDA_VISIBLE_DEVICES are passed to every rank (set but empty = no GPU: CPU ranks); each rank picks the GPU of its
# node-local rank. Exit code: dtune's (75 = checkpointed after SIGTERM/SIGUSR1, resume with --resume).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,9p' "$0"; exit 2; }
config=$1; shift
DTUNE=${DTUNE:-build/bin/dtune}
[ -x "$DTUNE" ] || { echo "train_local.sh: $DTUNE not found; build first (README)" >&2; exit 2; }

gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi
if [ -n "${CUDA_VISIBLE_DEVICES+set}" ]; then gpus=$(tr "," "\n" <<<"$CUDA_VISIBLE_DEVICES" | grep -c . || true); fi
extra=()
if [ "$gpus" -gt 0 ]; then
  np=${NP:-$gpus}
else
  np=${NP:-${CPU_RANKS:-2}}
  extra=(--train.device=cpu --train.precision=fp32)
  echo "train_local.sh: no GPU visible; $np CPU ranks (fp32)" >&2
fi
# Each rank gets its own block of physical cores, filled in order: ranks 0..k-1 on the first
# socket, and so on, which matches the usual GPU numbering (GPUs 0..k-1 on the first socket's PCIe
# root). train.threads = 0 then uses exactly the rank's cores. More ranks than cores: no binding.
cores=$(lscpu -p=CORE,SOCKET 2>/dev/null | grep -v '^#' | sort -u | wc -l)
[ "$cores" -gt 0 ] || cores=$(nproc)
per_rank=$(( cores / np ))
if [ "$per_rank" -ge 1 ]; then
  bind=(--map-by "slot:PE=$per_rank" --bind-to core)
else
  bind=(--oversubscribe --bind-to none)
fi
env_flags=()
for v in $(compgen -e | grep -E '^(NCCL_|CUDA_VISIBLE_DEVICES$|OMP_NUM_THREADS$)' || true); do env_flags+=(-x "$v"); done
set -x
exec mpirun -np "$np" "${bind[@]}" "${env_flags[@]}" "$DTUNE" train --config "$config" "${extra[@]}" "$@"
