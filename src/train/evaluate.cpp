// Exact eval loss: every row once across ranks, in padded micro-batches; see evaluate.h.
#include "dtune/train/evaluate.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>

#include "dtune/core/error.h"
#include "dtune/data/batcher.h"
#include "dtune/data/hdf5_dataset.h"
#include "dtune/data/sampler.h"
#include "dtune/dist/communicator.h"
#include "dtune/model/decoder.h"
#include "dtune/train/batch_tensors.h"

namespace dtune {

EvalResult evaluate(Decoder& model, const Hdf5Dataset& data, dist::Communicator& comm, c10::Device device,
                    int64_t batch_size) {
  DTUNE_CHECK(batch_size >= 1, "evaluate: batch size must be >= 1, got ", batch_size);
  model.set_training(false);
  at::NoGradGuard no_grad;
  const int64_t n = data.num_rows();
  const int rank = comm.rank(), world = comm.world_size();
  SamplerOptions so;
  so.shuffle = false;
  // Rank r visits global positions r, r + w, ...; positions >= n are the sampler's wrap-around
  // padding (at most the last row of a rank), whose labels are cleared below so that every row
  // counts exactly once.
  const ShardSampler sampler(n, rank, world, so);
  BatcherOptions bo;
  bo.batch_size = batch_size;  // padded on the right, file order (no length grouping)
  Batcher batcher(data, sampler, bo);
  at::Tensor sum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));  // read once, at the end
  int64_t tokens = 0, rows = 0, local = 0;  // local: this rank's rows so far
  Batch batch;
  while (batcher.next(batch)) {
    for (int64_t i = 0; i < batch.batch_size; ++i, ++local) {
      if (local * world + rank < n) {
        ++rows;
        continue;
      }
      auto first = batch.labels.begin() + i * batch.seq_len;
      batch.num_loss_tokens -= std::count_if(first, first + batch.seq_len, [](int32_t l) { return l != kIgnoreIndex; });
      std::fill(first, first + batch.seq_len, static_cast<int32_t>(kIgnoreIndex));
    }
    // A batch without loss tokens is skipped, unless the weights are sharded: then every rank
    // of the group must run each forward (FrozenWeights::collective).
    if (batch.num_loss_tokens == 0 && !model.frozen_weights().collective()) continue;
    const BatchTensors b = to_tensors(batch, /*packed=*/false, device);
    const at::Tensor hidden = model.forward_hidden(b.input_ids, b.position_ids, b.mask);
    sum += model.loss(hidden, b.loss_targets).sum;
    tokens += b.num_loss_tokens;
  }
  EvalResult r;
  const double total_sum = comm.all_reduce_scalar(sum.item<double>(), dist::ReduceOp::kSum);
  r.tokens = static_cast<int64_t>(comm.all_reduce_scalar(static_cast<double>(tokens), dist::ReduceOp::kSum));
  r.rows = static_cast<int64_t>(comm.all_reduce_scalar(static_cast<double>(rows), dist::ReduceOp::kSum));
  r.loss = r.tokens > 0 ? total_sum / static_cast<double>(r.tokens) : 0.0;
  return r;
}

}  // namespace dtune
