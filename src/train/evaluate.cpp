// Exact eval loss: every row once across ranks; see evaluate.h.
#include "dtune/train/evaluate.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "dtune/data/batcher.h"
#include "dtune/data/hdf5_dataset.h"
#include "dtune/data/sampler.h"
#include "dtune/dist/communicator.h"
#include "dtune/model/decoder.h"
#include "dtune/train/batch_tensors.h"

namespace dtune {

EvalResult evaluate(Decoder& model, const Hdf5Dataset& data, dist::Communicator& comm, c10::Device device) {
  model.set_training(false);
  at::NoGradGuard no_grad;
  const int64_t n = data.num_rows();
  SamplerOptions so;
  so.shuffle = false;
  // Rank r visits global positions r, r + w, ...; positions >= n are the sampler's wrap-around
  // padding and are skipped, so every row counts exactly once.
  const ShardSampler sampler(n, comm.rank(), comm.world_size(), so);
  BatcherOptions bo;
  bo.batch_size = 1;
  Batcher batcher(data, sampler, bo);
  double sum = 0;
  int64_t tokens = 0, rows = 0;
  Batch batch;
  for (int64_t k = 0; k < sampler.rows_per_rank() && batcher.next(batch); ++k) {
    if (k * comm.world_size() + comm.rank() >= n) break;
    const BatchTensors b = to_tensors(batch, /*packed=*/false, device);
    const at::Tensor hidden = model.forward_hidden(b.input_ids, b.position_ids, b.mask);
    const LossSum ls = model.loss(hidden, b.loss_targets);
    sum += ls.sum.item<double>();
    tokens += ls.num_tokens;
    ++rows;
  }
  EvalResult r;
  const double total_sum = comm.all_reduce_scalar(sum, dist::ReduceOp::kSum);
  r.tokens = static_cast<int64_t>(comm.all_reduce_scalar(static_cast<double>(tokens), dist::ReduceOp::kSum));
  r.rows = static_cast<int64_t>(comm.all_reduce_scalar(static_cast<double>(rows), dist::ReduceOp::kSum));
  r.loss = r.tokens > 0 ? total_sum / static_cast<double>(r.tokens) : 0.0;
  return r;
}

}  // namespace dtune
