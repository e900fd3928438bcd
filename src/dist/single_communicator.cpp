// The world-size-1 communicator: every collective is the identity.
#include <ATen/core/Tensor.h>

#include "dtune/core/error.h"
#include "dtune/dist/communicator.h"

namespace dtune::dist {
namespace {

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void all_reduce(at::Tensor& tensor, ReduceOp) override {
    DTUNE_CHECK(tensor.is_contiguous(), "all_reduce needs a contiguous tensor");
  }
  void broadcast(at::Tensor& tensor, int root) override {
    DTUNE_CHECK(tensor.is_contiguous(), "broadcast needs a contiguous tensor");
    DTUNE_CHECK(root == 0, "broadcast root ", root, " out of range for world size 1");
  }
  void barrier() override {}
  double all_reduce_scalar(double value, ReduceOp) override { return value; }
  void broadcast_string(std::string&, int root) override {
    DTUNE_CHECK(root == 0, "broadcast root ", root, " out of range for world size 1");
  }
};

}  // namespace

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace dtune::dist
