// The one-rank-per-task check; see include/dtune/dist/slurm_step.h.
#include "dtune/dist/slurm_step.h"

#include <cstdlib>
#include <string>

#include "dtune/core/error.h"

namespace dtune::dist {

void check_slurm_step(int world_size, const char* slurm_step_num_tasks) {
  if (slurm_step_num_tasks == nullptr || world_size != 1) return;
  char* end = nullptr;
  const long tasks = std::strtol(slurm_step_num_tasks, &end, 10);
  if (end == slurm_step_num_tasks || *end != '\0' || tasks <= 1) return;
  throw Error(str("Slurm started ", tasks, " tasks in this step (SLURM_STEP_NUM_TASKS) but MPI sees 1 rank: srun's --mpi ",
                  "plugin does not match this MPI, so each task would run alone. Set DTUNE_SRUN_MPI (or srun --mpi=) to a ",
                  "plugin of `srun --mpi=list` that this MPI supports (pmix for OpenMPI built with PMIx; cray_shasta for ",
                  "Cray MPICH; pmi2 for Intel MPI), or use DTUNE_LAUNCHER=mpirun"));
}

}  // namespace dtune::dist
