#!/bin/bash
# dtune LoRA fine-tuning on a Slurm cluster: one MPI rank per GPU, on one or many nodes.
#
#   sbatch slurm/finetune.sh [CONFIG] [--resume[=CHECKPOINT]] [--section.key=value ...]
#   sbatch --nodes=4 slurm/finetune.sh configs/deepseek_r1_distill_llama8b_recipe.ini --train.epochs=2
#
# Submit from the repository root (paths are relative to it). Flags given to sbatch override the
# #SBATCH lines below. The data must exist first: slurm/pretokenize.sh, or slurm/submit.sh, which
# chains both jobs. docs/HPC.md is the guide.
#
# Preemption and time limits: Slurm sends SIGUSR1 to this script 5 minutes before the time limit
# (--signal below). The script passes it on to every rank; the ranks finish the step they are in,
# write a checkpoint and exit 75, and the script requeues the job. The next allocation resumes
# from that checkpoint (--checkpoint.resume=latest). The log continues in the same file. A job is
# requeued only when it wrote a checkpoint after the signal, and at most DTUNE_MAX_REQUEUES times.
#
# One run per output folder: a fresh submission into a checkpoint.output_dir that holds
# checkpoints is refused (pass --resume to continue that run, or set another output_dir); only a
# requeue of this job resumes on its own. dtune itself refuses a second job on a folder in use.
#
# Environment (set before sbatch; sbatch exports your environment to the job):
#   DTUNE             the binary (default build/bin/dtune)
#   DTUNE_LAUNCHER    srun (default) | mpirun: how ranks start inside the allocation
#   DTUNE_SRUN_MPI    srun's --mpi plugin (default pmix; empty = the site's default, no --mpi;
#                     `srun --mpi=list` shows the site's; Cray MPICH: cray_shasta, Intel MPI: pmi2)
#   DTUNE_RESUME      unset (default): fresh on the first start (or the config's checkpoint.resume) |
#                     latest (same as --resume) | a checkpoint folder. A requeue of this job always
#                     resumes from the newest checkpoint.
#   DTUNE_MAX_REQUEUES  requeues after a time-limit warning at most (default 20)
#   NCCL_*            passed to every rank; defaults below
#
# Lines marked SITE are the ones each cluster changes.
#
#SBATCH --job-name=dtune-finetune
#SBATCH --nodes=1
# SITE: one rank per GPU (--ntasks-per-node must equal --gpus-per-node); 8-GPU nodes.
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
# SITE: cores per rank (per GPU): the rank's CPU threads, data reading, the NCCL proxy thread.
#SBATCH --cpus-per-task=12
# SITE: whole nodes (NCCL and NUMA placement need them) with all their memory.
#SBATCH --exclusive
#SBATCH --mem=0
#SBATCH --time=24:00:00
# %x = job name, %j = job id; a requeued job keeps its id and appends to the same file.
#SBATCH --output=%x-%j.out
#SBATCH --open-mode=append
# SIGUSR1 to this script (B:) 300 s before the time limit; the job may be requeued.
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
# SITE: the partition and the account to charge; uncomment (remove one '#') and fill in.
##SBATCH --partition=gpu
##SBATCH --account=PROJECT

set -uo pipefail
cd "${SLURM_SUBMIT_DIR:-.}" || exit 2
log() { echo "finetune.sh: $*" >&2; }
# A time-limit warning can come at any moment, setup included: record it from the start.
got_signal=""
signal_at=0
pid=""
on_signal() {
  got_signal=$1
  signal_at=$(date +%s)
  log "SIG$1 at $(date +%T): asking every rank to checkpoint and stop"
  [ -n "$pid" ] && kill -s USR1 "$pid" 2>/dev/null
}
trap 'on_signal USR1' USR1
trap 'on_signal TERM' TERM

# ---- SITE: the software environment -------------------------------------------------------
# The build's modules must be loaded here too (docs/HPC.md, "Building on a cluster"), e.g.:
# module load gcc/12 cuda/12.8 openmpi/4.1 hdf5/1.14
# libtorch is found through the binary's RPATH (the .venv or the libtorch archive it was built with).

config=${1:-configs/deepseek_r1_distill_llama8b_recipe.ini}
[ $# -gt 0 ] && shift
DTUNE=${DTUNE:-build/bin/dtune}
launcher=${DTUNE_LAUNCHER:-srun}
restarts=${SLURM_RESTART_COUNT:-0}
max_requeues=${DTUNE_MAX_REQUEUES:-20}
overrides=()
asked_resume=""
for a in "$@"; do
  case "$a" in
    --resume) asked_resume=latest ;;
    --resume=*) asked_resume=${a#--resume=} ;;
    *) overrides+=("$a") ;;
  esac
done
set -- "${overrides[@]+"${overrides[@]}"}"
# Resume only when meant. A requeue of this very job always continues from the newest checkpoint
# (a DTUNE_RESUME=PATH of the first start would send every requeue back to PATH); otherwise what
# was asked: --resume[=PATH], DTUNE_RESUME, or checkpoint.resume in the config or its overrides.
if [ "$restarts" -gt 0 ]; then resume=latest
elif [ -n "$asked_resume" ]; then resume=$asked_resume
elif [ -n "${DTUNE_RESUME+set}" ]; then resume=$DTUNE_RESUME
else resume=""
fi

[ -f "$config" ] || { log "config $config not found (paths are relative to $PWD, the submit directory)"; exit 2; }
[ -x "$DTUNE" ] || { log "$DTUNE is not an executable; build first (README) or set DTUNE"; exit 2; }
# Check the config before any GPU time is spent: bad keys and values fail here, by name.
"$DTUNE" config --config "$config" "$@" > /dev/null || { log "config $config is not valid (see above)"; exit 2; }
out_dir=$("$DTUNE" config --config "$config" "$@" --get checkpoint.output_dir)
[ -z "$resume" ] && resume=$("$DTUNE" config --config "$config" "$@" --get checkpoint.resume)
# The newest complete checkpoint-STEP folder of the output dir, by step ("" when none).
newest_checkpoint() {
  local d best="" best_step=-1 step
  for d in "$out_dir"/checkpoint-*/; do
    [ -f "$d/trainer_state.json" ] || continue
    step=${d%/}; step=${step##*checkpoint-}
    [[ "$step" =~ ^[0-9]+$ ]] && [ "$step" -gt "$best_step" ] && { best_step=$step; best=${d%/}; }
  done
  echo "$best"
}
if [ -z "$resume" ] && [ -n "$(newest_checkpoint)" ]; then
  log "checkpoint.output_dir $out_dir already holds $(newest_checkpoint) from an earlier run; this fresh"
  log "submission would overwrite it. Continue that run: sbatch slurm/finetune.sh $config --resume ...;"
  log "or start a new one: add --checkpoint.output_dir=NEW_FOLDER"
  exit 2
fi

# ---- Threads and NCCL defaults ---------------------------------------------------------------
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
# WARN prints NCCL's problems only; INFO shows the transports it picked (IB, NVLink, sockets).
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
# Left to NCCL unless set: NCCL_SOCKET_IFNAME (e.g. ib0, or ^lo,docker to exclude),
# NCCL_IB_HCA (e.g. mlx5_0,mlx5_1), NCCL_IB_DISABLE=1 (no InfiniBand), NCCL_NET_GDR_LEVEL.
# docs/HPC.md, "NCCL troubleshooting", says when to set which.

# ---- Start the ranks --------------------------------------------------------------------------
nodes=${SLURM_JOB_NUM_NODES:-1}
ntasks=${SLURM_NTASKS:-1}
log "job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}): $ntasks ranks on $nodes node(s) [${SLURM_JOB_NODELIST:-}], config $config, launcher $launcher"
case "$launcher" in
  srun)
    # --kill-on-bad-exit: a rank that dies without MPI_Abort (a segfault) still ends the step.
    # --cpus-per-task again: Slurm 22.05-23.02 do not pass the job's value on to srun. block:block
    # with --cpu-bind=cores puts each rank's cores together, on its GPU's socket for the usual
    # rank-to-GPU order.
    launch=(srun --kill-on-bad-exit=1 --distribution=block:block --cpu-bind=cores)
    srun_mpi=${DTUNE_SRUN_MPI-pmix}
    [ -n "$srun_mpi" ] && launch+=(--mpi="$srun_mpi")
    [ -n "${SLURM_CPUS_PER_TASK:-}" ] && launch+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
    ;;
  mpirun)
    # OpenMPI reads the allocation from Slurm and starts one daemon per node through srun; -x
    # passes the environment to remote ranks, except CUDA_VISIBLE_DEVICES: each node's daemon has
    # its own node's from Slurm (the batch node's list would be wrong on the others). dtune's
    # placement check stops the job if ranks and GPUs still do not match. The signal handler
    # above sends USR1 to mpirun, which forwards it to every rank (OpenMPI's default).
    per_node=$(( ntasks / nodes ))
    launch=(mpirun -np "$ntasks" --map-by "ppr:${per_node}:node:PE=${OMP_NUM_THREADS}" --bind-to core)
    for v in $(compgen -e | grep -E '^(NCCL_|CUDA_|OMP_NUM_THREADS$|UCX_)' | grep -v '^CUDA_VISIBLE_DEVICES$' || true); do
      launch+=(-x "$v")
    done
    # Slurm >= 23.11: the daemons' srun must be an external launcher, or their step holds the
    # node's CPUs and GPUs and the ranks get one CPU (OpenMPI >= 5.0.2 adds it itself; a second
    # copy is harmless). Older Slurm has no such option and needs none.
    if [ -z "${OMPI_MCA_plm_slurm_args+set}" ] && srun --help 2>/dev/null | grep -q -- '--external-launcher'; then
      export OMPI_MCA_plm_slurm_args=--external-launcher
      log "Slurm >= 23.11: OMPI_MCA_plm_slurm_args=--external-launcher for mpirun's daemons"
    fi
    ;;
  *) log "DTUNE_LAUNCHER=$launcher: use srun or mpirun"; exit 2 ;;
esac

started=$(date +%s)
if [ -n "$got_signal" ]; then
  # The warning came before the ranks started: there is nothing to checkpoint; requeue below.
  rc=75
else
  resume_arg=()
  [ -n "$resume" ] && resume_arg=(--checkpoint.resume="$resume")
  "${launch[@]}" "$DTUNE" train --config "$config" "${resume_arg[@]+"${resume_arg[@]}"}" "$@" &
  pid=$!
  # A trapped signal interrupts `wait`; wait again until the launcher has really exited.
  while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
  wait "$pid"
  rc=$?
  log "ranks exited with $rc at $(date +%T)"
fi

# ---- Requeue after a time-limit warning --------------------------------------------------------
# dtune exits 75 after checkpointing on a signal. A launcher that tears down the other ranks after
# the first one exits may report another code; the checkpoint is complete before any rank exits
# (the ranks wait for each other), so any non-zero exit after our USR1 resumes cleanly.
if [ "$got_signal" = USR1 ] && [ "$rc" -ne 0 ]; then
  # Requeue only with progress to resume from, and a bounded number of times: a job whose ranks
  # fail before their first checkpoint must not loop through the queue.
  # Progress: dtune exited 75 (it checkpointed on the signal), or a checkpoint newer than the
  # signal exists (a launcher that reports another code for the ranks' exit).
  newest=$(newest_checkpoint)
  if [ -n "$pid" ] && [ "$rc" -ne 75 ] && { [ -z "$newest" ] ||
       [ "$(stat -c %Y "$newest/trainer_state.json" 2>/dev/null || echo 0)" -lt "$signal_at" ]; }; then
    log "not requeued: no checkpoint was written after the signal (newest: ${newest:-none}); the ranks failed (see above)"
    exit 1
  fi
  if [ "$restarts" -ge "$max_requeues" ]; then
    log "not requeued: this job was requeued $restarts times already (DTUNE_MAX_REQUEUES=$max_requeues);"
    log "resubmit with --resume to continue from ${newest:-the newest checkpoint}"
    exit 1
  fi
  if [ -n "${SLURM_JOB_ID:-}" ] && scontrol requeue "$SLURM_JOB_ID"; then
    log "requeued job $SLURM_JOB_ID; the next allocation resumes from the checkpoint"
    exit 0
  fi
  log "could not requeue; resubmit with --resume to continue from the checkpoint"
  exit 75
fi
# A launcher can report success for ranks that never started (seen with srun when a step fails to
# launch); a finished run has written its adapter during this job.
if [ "$rc" -eq 0 ]; then
  adapter="$out_dir/adapter/adapter_model.safetensors"
  if [ ! -f "$adapter" ] || [ "$(stat -c %Y "$adapter")" -lt "$started" ]; then
    log "the launcher exited 0 but this run wrote no $adapter: the ranks did not run to the end (see above)"
    exit 1
  fi
  log "done: adapter in $out_dir/adapter"
fi
# SIGTERM comes from scancel or from preemption by another job; Slurm decides whether the job
# comes back (a preempted job is requeued by Slurm itself when the site allows it).
exit "$rc"
