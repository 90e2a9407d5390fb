#!/bin/bash
# A sample SLURM job: data-parallel training over 2 nodes with 4 GPUs each.
# Not run here (this project has no cluster); two processes on one machine are
# (README, "Several devices"). Submit with: sbatch docs/slurm_train.sh
#SBATCH --job-name=nmt-flax
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1          # one process per node; it drives all the node's GPUs
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=16
#SBATCH --time=02:00:00
#SBATCH --output=%x-%j.out
set -euo pipefail
# Every process runs the same command; jax.distributed.initialize() reads the
# coordinator, the process count and this process's id from SLURM's variables.
# --batch-size must be a multiple of the global device count (here 8).
# Rerunning the job resumes from the last complete checkpoint.
srun python train.py --distributed --preset best-cpu --batch-size 128 \
  --workdir "${WORKDIR:-runs/slurm}"
