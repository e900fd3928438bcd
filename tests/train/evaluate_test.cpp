// Tests src/train/evaluate.cpp on SmolLM2-135M (fp32, CPU): the batched eval loss equals one
// forward per row (the former implementation, kept here as the reference) for several batch
// sizes and simulated rank counts, every row counted exactly once (the sampler's wrap-around
// repeats excluded).
#include "dtune/train/evaluate.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <boost/test/unit_test.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../data/synthetic_h5.h"
#include "dtune/data/batcher.h"
#include "dtune/data/hdf5_dataset.h"
#include "dtune/data/sampler.h"
#include "dtune/dist/communicator.h"
#include "dtune/model/decoder.h"
#include "dtune/train/batch_tensors.h"

namespace dtune {
namespace {

const std::string kModelDir = std::string(DTUNE_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct";

// Rank `rank` of `world` in one process: every reduction returns this rank's own value, and the
// test combines the simulated ranks' results itself.
class SimulatedRank final : public dist::Communicator {
 public:
  SimulatedRank(int rank, int world) : rank_(rank), world_(world) {}
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend() const override { return "simulated"; }
  void all_reduce(at::Tensor&, dist::ReduceOp) override {}
  void broadcast(at::Tensor&, int) override {}
  void all_gather(const at::Tensor&, at::Tensor&) override {}
  void barrier() override {}
  double all_reduce_scalar(double value, dist::ReduceOp) override { return value; }
  void broadcast_string(std::string&, int) override {}

 private:
  int rank_, world_;
};

// One row per forward over the whole split: (loss sum, tokens).
std::pair<double, int64_t> per_row_reference(Decoder& model, const Hdf5Dataset& data) {
  model.set_training(false);
  at::NoGradGuard no_grad;
  SamplerOptions so;
  so.shuffle = false;
  const ShardSampler sampler(data.num_rows(), 0, 1, so);
  Batcher batcher(data, sampler, BatcherOptions{});
  double sum = 0;
  int64_t tokens = 0;
  Batch batch;
  while (batcher.next(batch)) {
    const BatchTensors b = to_tensors(batch, false, c10::Device(c10::kCPU));
    sum += model.loss(model.forward_hidden(b.input_ids, b.position_ids, b.mask), b.loss_targets).sum.item<double>();
    tokens += b.num_loss_tokens;
  }
  return {sum, tokens};
}

BOOST_AUTO_TEST_CASE(batched_eval_equals_one_row_per_forward) {
  BOOST_REQUIRE_MESSAGE(std::ifstream(kModelDir + "/config.json").good(), "missing " + kModelDir + ": run scripts/setup.sh");
  Decoder model = Decoder::load(kModelDir);
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("dtune_evaluate_" + std::to_string(::getpid()) + ".h5");
  // 7 eval rows of different lengths (so batches are padded) and 2 train rows.
  std::vector<test::SyntheticRow> rows =
      test::make_rows({23, 9, 31, 17, 40, 12, 26, 8, 8}, {5, 3, 10, 4, 12, 2, 9, 3, 3});
  for (size_t i = 0; i < 7; ++i) rows[i].eval = true;
  test::write_synthetic_h5(path.string(), rows, model.config().vocab_size);
  const Hdf5Dataset data = Hdf5Dataset::open(path.string(), "eval");
  BOOST_REQUIRE_EQUAL(data.num_rows(), 7);

  const auto [ref_sum, ref_tokens] = per_row_reference(model, data);
  const double ref_loss = ref_sum / static_cast<double>(ref_tokens);
  for (int world : {1, 2, 3}) {
    for (int64_t batch_size : {1, 2, 3, 8}) {
      double sum = 0;
      int64_t tokens = 0, counted = 0;
      for (int rank = 0; rank < world; ++rank) {
        SimulatedRank comm(rank, world);
        const EvalResult r = evaluate(model, data, comm, c10::Device(c10::kCPU), batch_size);
        sum += r.loss * static_cast<double>(r.tokens);
        tokens += r.tokens;
        counted += r.rows;
      }
      BOOST_TEST_INFO("world " << world << ", batch size " << batch_size);
      BOOST_TEST(counted == 7);
      BOOST_TEST(tokens == ref_tokens);
      // fp32 forward; padding and batching change only the summation order and kernel blocking.
      BOOST_TEST(std::abs(sum / static_cast<double>(tokens) - ref_loss) <= 1e-5 * ref_loss);
    }
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace dtune
