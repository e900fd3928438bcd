// MPI over CPU tensors on MPI_COMM_WORLD (see communicator.h for the contract).
#pragma once

#include "dtune/dist/communicator.h"

namespace dtune::dist {

class MpiCommunicator final : public Communicator {
 public:
  int rank() const override;
  int world_size() const override;
  std::string backend() const override { return "mpi"; }
  void all_reduce(at::Tensor& tensor, ReduceOp op) override;
  void broadcast(at::Tensor& tensor, int root) override;
  void barrier() override;
  double all_reduce_scalar(double value, ReduceOp op) override;
  void broadcast_string(std::string& bytes, int root) override;
};

}  // namespace dtune::dist
