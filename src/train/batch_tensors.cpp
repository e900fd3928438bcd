// Batch -> tensors on the device; see batch_tensors.h.
#include "dtune/train/batch_tensors.h"

#include <ATen/ATen.h>

#include <numeric>

#include "dtune/core/error.h"
#include "dtune/data/batcher.h"

namespace dtune {
namespace {

// A host tensor on the device. On a GPU it is staged in pinned memory and copied without
// waiting (the caching host allocator keeps the staging block until the copy is done), so
// preparing a micro-batch never waits for the GPU to finish the previous one.
at::Tensor to_device(const at::Tensor& host, c10::Device device) {
  if (device.is_cpu()) return host;
  at::Tensor pinned = at::empty(host.sizes(), host.options().pinned_memory(true));
  pinned.copy_(host);
  return pinned.to(device, /*non_blocking=*/true);
}

at::Tensor host_long(const std::vector<int32_t>& v, int64_t b, int64_t t) {
  // from_blob borrows v; .to(kLong) copies.
  return at::from_blob(const_cast<int32_t*>(v.data()), {b, t}, at::kInt).to(at::kLong);
}

at::Tensor to_long(const std::vector<int32_t>& v, int64_t b, int64_t t, c10::Device device) {
  return to_device(host_long(v, b, t), device);
}

}  // namespace

BatchTensors to_tensors(const Batch& batch, bool packed, c10::Device device) {
  const int64_t b = batch.batch_size, t = batch.seq_len;
  BatchTensors out;
  out.input_ids = to_long(batch.input_ids, b, t, device);
  out.position_ids = to_long(batch.position_ids, b, t, device);
  // Loss positions are selected here on the host, where the labels are: the device step then
  // needs no count back from the GPU.
  const LossTargets host = select_loss_targets(host_long(batch.labels, b, t), /*labels_shifted=*/false);
  out.loss_targets.positions = to_device(host.positions, device);
  out.loss_targets.targets = to_device(host.targets, device);
  out.loss_targets.count = host.count;
  DTUNE_CHECK(host.count == batch.num_loss_tokens, "internal: the batch counts ", batch.num_loss_tokens,
              " loss tokens but its labels select ", host.count);
  out.num_loss_tokens = batch.num_loss_tokens;
  out.num_real_tokens = std::accumulate(batch.lengths.begin(), batch.lengths.end(), int64_t{0});
  if (packed) {
    // The rows' boundaries are read here on the host too: flash attention's varlen kernel
    // takes them (and their longest length) with no read back from the GPU.
    AttentionMask::Rows rows = packed_rows(host_long(batch.sequence_ids, b, t));
    rows.cu_seqlens = to_device(rows.cu_seqlens, device);
    out.mask = AttentionMask::packed(to_long(batch.sequence_ids, b, t, device), std::move(rows));
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
