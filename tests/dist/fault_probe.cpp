// A tiny MPI program for the fault test: rank 1 fails (throws, or exits without MPI_Finalize)
// while the other ranks wait in a collective. Usage: dist_fault_probe throw|exit|ok
// Structured as dtune's commands are: the MpiEnv lives inside the run_guarded body, so a throw
// unwinds through its destructor before the error boundary aborts the job.
#include <ATen/ATen.h>

#include <cstdlib>
#include <string>

#include "dtune/core/error.h"
#include "dtune/dist/job_guard.h"
#include "dtune/dist/mpi_env.h"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "ok";
  return dtune::dist::run_guarded([&] {
    dtune::dist::MpiEnv env(&argc, &argv);
    auto comm = env.make_mpi_communicator();
    if (env.rank() == 1 && mode == "throw") throw dtune::Error("rank 1 failed on purpose (fault test)");
    if (env.rank() == 1 && mode == "exit") std::_Exit(3);
    at::Tensor t = at::ones({8});
    comm->all_reduce(t, dtune::dist::ReduceOp::kSum);  // peers of a failed rank block here
    comm->barrier();
    return 0;
  });
}
