// MPI start-up/tear-down, node-local rank discovery and job-wide abort.
#include "dtune/dist/mpi_env.h"

#include <mpi.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>

#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/dist/check.h"
#include "dtune/dist/mpi_communicator.h"

namespace dtune::dist {

MpiEnv::MpiEnv(int* argc, char*** argv, double collective_timeout_s) : collective_timeout_s_(collective_timeout_s) {
  DTUNE_CHECK(collective_timeout_s_ > 0, "train.collective_timeout must be > 0 seconds, got ", collective_timeout_s_);
  int initialized = 0;
  MPI_CHECK(MPI_Initialized(&initialized));
  int provided = MPI_THREAD_FUNNELED;
  if (!initialized) {
    // FUNNELED: only the main thread calls MPI. Other threads exist (libtorch's, NCCL's, the NCCL
    // watchdog), and none of them calls MPI: the watchdog ends a failed job without it.
    MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    owns_mpi_ = true;
  }
  // Return codes instead of MPI's default abort-with-a-terse-message, so MPI_CHECK reports.
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  log::set_rank(rank_, world_size_);
  {
    // The job's first collective, bounded like every later one: a rank that started but does not
    // reach this point names itself by not answering. (MPI_Init's own exchange, before this, may
    // already wait for every rank; dtune cannot bound that one: the launcher must.)
    MpiCommunicator first(collective_timeout_s_);
    first.set_phase("start-up, every rank after MPI_Init");
    first.barrier();
  }
  MPI_Comm local = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local));
  MPI_CHECK(MPI_Comm_rank(local, &local_rank_));
  MPI_CHECK(MPI_Comm_size(local, &local_size_));
  MPI_CHECK(MPI_Allreduce(&rank_, &node_first_rank_, 1, MPI_INT, MPI_MIN, local));
  MPI_CHECK(MPI_Comm_free(&local));
  if (provided < MPI_THREAD_FUNNELED) {
    log::warn(dtune::str("this MPI provides thread level ", provided, ", below MPI_THREAD_FUNNELED (", MPI_THREAD_FUNNELED,
                  "): dtune calls MPI from the main thread only, but the process has other threads; if MPI "
                  "misbehaves, use an MPI built with thread support (Open MPI provides it)"));
  }
}

MpiEnv::~MpiEnv() {
  if (!owns_mpi_) return;
  // Unwinding from an error: MPI_Finalize would wait for ranks that are blocked in a collective
  // with this one (a hang). The error boundary (run_guarded) reports and calls MPI_Abort instead.
  if (std::uncaught_exceptions() > 0) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();  // destructor: nothing useful to do with a failure here
}

std::unique_ptr<Communicator> MpiEnv::make_mpi_communicator() const {
  return std::make_unique<MpiCommunicator>(collective_timeout_s_);
}

std::unique_ptr<Communicator> MpiEnv::make_group_mpi_communicator(int group_size) const {
  return std::make_unique<MpiCommunicator>(collective_timeout_s_, split_world_into_groups(group_size), /*owns_comm=*/true);
}

bool mpi_active() {
  int initialized = 0, finalized = 0;
  if (MPI_Initialized(&initialized) != MPI_SUCCESS) return false;
  if (MPI_Finalized(&finalized) != MPI_SUCCESS) return false;
  return initialized && !finalized;
}

void abort_job(int exit_code) {
  if (!mpi_active()) return;
  int size = 1;
  if (MPI_Comm_size(MPI_COMM_WORLD, &size) != MPI_SUCCESS || size <= 1) return;
  // Peers may be blocked in a collective: take the whole job down rather than hang it.
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort should not return; make sure this process ends anyway
}

}  // namespace dtune::dist
