// MPI over CPU tensors on one MPI communicator, MPI_COMM_WORLD by default (see communicator.h for
// the contract).
#pragma once

#include <mpi.h>

#include "dtune/dist/communicator.h"

namespace dtune::dist {

class MpiCommunicator final : public Communicator {
 public:
  // Collectives over comm (its ranks and size); owns_comm: MPI_Comm_free it on destruction
  // (a communicator this process split off; never MPI_COMM_WORLD). Throws dtune::Error on an
  // MPI failure.
  explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD, bool owns_comm = false);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  void all_reduce(at::Tensor& tensor, ReduceOp op) override;
  void broadcast(at::Tensor& tensor, int root) override;
  void all_gather(const at::Tensor& input, at::Tensor& output) override;
  std::unique_ptr<PendingCollective> start_all_gather(const at::Tensor& input, at::Tensor& output) override;
  void barrier() override;
  double all_reduce_scalar(double value, ReduceOp op) override;
  void broadcast_string(std::string& bytes, int root) override;

  MPI_Comm comm() const { return comm_; }

 private:
  MPI_Comm comm_;
  bool owns_comm_;
  int rank_ = 0, size_ = 1;
};

// MPI_Comm_split of MPI_COMM_WORLD into consecutive groups of group_size ranks; returns the
// group holding this rank (the caller frees it, e.g. through MpiCommunicator's owns_comm).
// REQUIRES: called on every rank with the same group_size. Throws dtune::Error when group_size
// does not divide the world size.
MPI_Comm split_world_into_groups(int group_size);

}  // namespace dtune::dist
