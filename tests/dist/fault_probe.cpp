// A tiny MPI program for the fault test: rank 1 fails (throws, exits without MPI_Finalize, or
// stalls outside MPI) while the other ranks wait in a collective.
// Usage: dist_fault_probe throw|exit|stall|ok
//   stall: rank 1 sleeps before the all-reduce; the collective timeout (3 s) must end the job
//          and name rank 1 and the collective.
// Structured as dtune's commands are: the MpiEnv lives inside the run_guarded body, so a throw
// unwinds through its destructor before the error boundary aborts the job.
#include <ATen/ATen.h>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "dtune/core/error.h"
#include "dtune/dist/job_guard.h"
#include "dtune/dist/mpi_env.h"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "ok";
  return dtune::dist::run_guarded([&] {
    // 3 s where the timeout is the point; elsewhere a bound that a loaded machine never reaches.
    dtune::dist::MpiEnv env(&argc, &argv, /*collective_timeout_s=*/mode == "stall" ? 3.0 : 120.0);
    auto comm = env.make_mpi_communicator();
    comm->set_phase("probe");
    if (env.rank() == 1 && mode == "throw") throw dtune::Error("rank 1 failed on purpose (fault test)");
    if (env.rank() == 1 && mode == "exit") std::_Exit(3);
    if (env.rank() == 1 && mode == "stall") sleep(600);
    at::Tensor t = at::ones({8});
    comm->all_reduce(t, dtune::dist::ReduceOp::kSum);  // peers of a failed rank block here
    comm->barrier();
    return 0;
  });
}
