// The world-size-1 communicator: every collective is the identity.
#include <ATen/ATen.h>

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
  void all_gather(const at::Tensor& input, at::Tensor& output) override {
    check_all_gather_args(input, output, 1);
    output.copy_(input);
  }
  void barrier() override {}
  double all_reduce_scalar(double value, ReduceOp) override { return value; }
  void broadcast_string(std::string&, int root) override {
    DTUNE_CHECK(root == 0, "broadcast root ", root, " out of range for world size 1");
  }
};

}  // namespace

void check_all_gather_args(const at::Tensor& input, const at::Tensor& output, int world_size) {
  DTUNE_CHECK(input.defined() && output.defined(), "all_gather: input and output must be defined");
  DTUNE_CHECK(input.is_contiguous() && output.is_contiguous(), "all_gather needs contiguous tensors");
  DTUNE_CHECK(input.scalar_type() == output.scalar_type() && input.device() == output.device(),
              "all_gather: input (", input.scalar_type(), ", ", input.device(), ") and output (", output.scalar_type(),
              ", ", output.device(), ") must share dtype and device");
  DTUNE_CHECK(output.numel() == input.numel() * world_size, "all_gather: output has ", output.numel(),
              " elements but world size ", world_size, " x input ", input.numel(), " = ", input.numel() * world_size);
}

namespace {
struct DoneCollective final : PendingCollective {
  void wait() override {}
};
}  // namespace

std::unique_ptr<PendingCollective> Communicator::start_all_gather(const at::Tensor& input, at::Tensor& output) {
  all_gather(input, output);
  return std::make_unique<DoneCollective>();
}

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace dtune::dist
