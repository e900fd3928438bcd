// Is this process the MPI job that Slurm started? A srun --mpi plugin that does not match the MPI
// library makes every task of the step its own one-rank MPI job: N copies of rank 0 that train
// the same data side by side and write into one output folder. Checked at the start of a run.
#pragma once

namespace dtune::dist {

// world_size: MPI_COMM_WORLD's size in this process. slurm_step_num_tasks: the value of
// SLURM_STEP_NUM_TASKS (nullptr when unset, outside srun). Throws dtune::Error, naming both
// counts and the fix (DTUNE_SRUN_MPI / srun --mpi=...), when MPI sees one rank but the step has
// several tasks. Other differences are not errors: mpirun inside an allocation runs its ranks
// under a step of one daemon per node.
void check_slurm_step(int world_size, const char* slurm_step_num_tasks);

}  // namespace dtune::dist
