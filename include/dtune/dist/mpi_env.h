// MPI start-up and tear-down for one process: world rank/size, the node-local rank (from
// MPI_Comm_split_type SHARED), and communicators built on MPI_COMM_WORLD.
#pragma once

#include <memory>
#include <string>

#include "dtune/dist/communicator.h"

namespace dtune::dist {

class MpiEnv {
 public:
  // Initialises MPI (thread level FUNNELED) unless already initialised; MPI errors return codes
  // (MPI_ERRORS_RETURN) so that every call is checked. Sets log::set_rank. Then waits for every
  // rank in a barrier bounded by collective_timeout_s (seconds, train.collective_timeout; the
  // default is the option's): a rank that does not arrive ends the job, named
  // (mpi_communicator.h). Throws dtune::Error when collective_timeout_s <= 0.
  MpiEnv(int* argc, char*** argv, double collective_timeout_s = 600);
  ~MpiEnv();  // MPI_Finalize (only if this object initialised MPI)
  MpiEnv(const MpiEnv&) = delete;
  MpiEnv& operator=(const MpiEnv&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }

  // MPI over CPU tensors on MPI_COMM_WORLD, each collective bounded by collective_timeout_s.
  std::unique_ptr<Communicator> make_mpi_communicator() const;
  // NCCL over CUDA tensors; the unique id travels over MPI. collective_timeout_s bounds every
  // collective: an NCCL one past it (or an NCCL async error) makes the watchdog abort the whole
  // job; the host-side helpers (barrier, all_reduce_scalar, broadcast_string) run over
  // MpiCommunicator with the same bound.
  std::unique_ptr<Communicator> make_nccl_communicator(int device_index) const;

  double collective_timeout_s() const { return collective_timeout_s_; }

  // The shard group that holds this rank: world ranks [g * group_size, (g + 1) * group_size)
  // with g = rank / group_size, as a communicator of its own (MPI over CPU tensors, or NCCL),
  // for train.sharding's all-gathers (FSDP's shard process group). REQUIRES: called on every
  // rank with the same group_size, which divides world_size (else dtune::Error).
  // Both bounded by collective_timeout_s, as the world's.
  std::unique_ptr<Communicator> make_group_mpi_communicator(int group_size) const;
  std::unique_ptr<Communicator> make_group_nccl_communicator(int group_size, int device_index) const;

  // The world rank of the first rank on this rank's node: equal for two ranks exactly when they
  // share a node (MPI_COMM_TYPE_SHARED). For checking that a shard group stays inside a node.
  int node_first_rank() const { return node_first_rank_; }

 private:
  bool owns_mpi_ = false;
  double collective_timeout_s_;
  int rank_ = 0, world_size_ = 1, local_rank_ = 0, local_size_ = 1, node_first_rank_ = 0;
};

// True between MPI_Init and MPI_Finalize.
bool mpi_active();
// Brings every rank down (MPI_Abort on MPI_COMM_WORLD) when MPI is active; otherwise returns.
// Called by main() after a rank reported an error, so that peers blocked in a collective do not hang.
void abort_job(int exit_code);

}  // namespace dtune::dist
