// Batch -> tensors on the device; see batch_tensors.h.
#include "dtune/train/batch_tensors.h"

#include <ATen/ATen.h>

#include <numeric>

#include "dtune/data/batcher.h"

namespace dtune {
namespace {

at::Tensor to_long(const std::vector<int32_t>& v, int64_t b, int64_t t, c10::Device device) {
  // from_blob borrows v; .to(kLong) copies, then the copy moves to the device.
  at::Tensor host = at::from_blob(const_cast<int32_t*>(v.data()), {b, t}, at::kInt).to(at::kLong);
  return device.is_cpu() ? host : host.to(device, /*non_blocking=*/false);
}

}  // namespace

BatchTensors to_tensors(const Batch& batch, bool packed, c10::Device device) {
  const int64_t b = batch.batch_size, t = batch.seq_len;
  BatchTensors out;
  out.input_ids = to_long(batch.input_ids, b, t, device);
  out.position_ids = to_long(batch.position_ids, b, t, device);
  out.labels = to_long(batch.labels, b, t, device);
  out.num_loss_tokens = batch.num_loss_tokens;
  out.num_real_tokens = std::accumulate(batch.lengths.begin(), batch.lengths.end(), int64_t{0});
  if (packed) {
    out.mask = AttentionMask::packed(to_long(batch.sequence_ids, b, t, device));
  } else {
    // The batcher pads on the right. Under plain causal attention a real token only sees earlier
    // positions, which are all real, so it is exact for every token that carries loss (padding
    // positions carry none and no real token sees them). No mask tensor keeps SDPA on its fused
    // flash kernels, which take none (tests/model/decoder_test.cpp checks the equivalence).
    out.mask = AttentionMask::causal();
  }
  return out;
}

}  // namespace dtune
