#!/bin/bash
# Pretokenize a dataset once, as a CPU job, before fine-tuning (docs/DATA_FORMAT.md):
#
#   sbatch slurm/pretokenize.sh MODEL_DIR INPUT.json[l] OUTPUT.h5 [dtune pretokenize options ...]
#   sbatch slurm/pretokenize.sh models/DeepSeek-R1-Distill-Llama-8B out/medical-o1-reasoning-SFT/medical_o1_sft.json \
#       out/medical_o1_llama8b_recipe.h5 --template recipe --max-length 1024 --eval-fraction 0
#
# slurm/submit.sh submits this and then slurm/finetune.sh with a dependency on it. The output is
# written under a temporary name and renamed when complete, so a failed or cancelled job never
# leaves a half-written file for the training job to read.
#
# Lines marked SITE are the ones each cluster changes.
#
#SBATCH --job-name=dtune-pretokenize
#SBATCH --nodes=1
#SBATCH --ntasks=1
# Tokenizer threads: the job uses every core it is given (about 1,400 rows/s per 2 cores).
#SBATCH --cpus-per-task=32
#SBATCH --time=02:00:00
#SBATCH --output=%x-%j.out
# SITE: a CPU partition is enough; and the account to charge.
##SBATCH --partition=cpu
##SBATCH --account=PROJECT

set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
# SITE: the same modules as the build (docs/HPC.md).
# module load gcc/12 openmpi/4.1 hdf5/1.14
[ $# -ge 3 ] || { echo "usage: sbatch slurm/pretokenize.sh MODEL_DIR INPUT OUTPUT.h5 [options]" >&2; exit 2; }
# launch/pretokenize.sh passes --threads $(nproc): the CPUs Slurm gave this job.
exec launch/pretokenize.sh "$@"
