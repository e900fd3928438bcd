// Attention masks for SDPA: causal, padded and packed (block-diagonal causal) batches.
#include "dtune/model/attention_mask.h"

#include <ATen/ATen.h>

#include "dtune/core/error.h"

namespace dtune {

AttentionMask AttentionMask::causal() { return AttentionMask(); }

AttentionMask AttentionMask::padding(const at::Tensor& valid) {
  DTUNE_CHECK(valid.dim() == 2, "AttentionMask::padding: valid must be (B, T), got ", valid.dim(),
              " dims");
  AttentionMask m;
  m.kind_ = Kind::kPadding;
  m.tensor_ = valid.to(at::kBool);
  return m;
}

AttentionMask AttentionMask::packed(const at::Tensor& sequence_ids) {
  DTUNE_CHECK(sequence_ids.dim() == 2, "AttentionMask::packed: sequence_ids must be (B, T)");
  AttentionMask m;
  m.kind_ = Kind::kPacked;
  m.tensor_ = sequence_ids.to(at::kLong);
  return m;
}

at::Tensor AttentionMask::build_sdpa_mask(int64_t q_len, const at::Tensor& key_valid) const {
  const auto device = key_valid.defined() ? key_valid.device() : tensor_.device();
  const int64_t k_len = key_valid.defined() ? key_valid.size(1) : tensor_.size(1);
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  const at::Tensor q_pos = at::arange(k_len - q_len, k_len, long_opts).view({q_len, 1});
  const at::Tensor k_pos = at::arange(k_len, long_opts).view({1, k_len});
  at::Tensor allowed = (k_pos <= q_pos).unsqueeze(0);  // (1, T_q, T_k)
  if (kind_ == Kind::kPacked) {
    DTUNE_CHECK(!key_valid.defined(), "packed attention masks do not support a KV cache");
    const at::Tensor& s = tensor_;  // (B, T)
    allowed = allowed & (s.unsqueeze(2) == s.unsqueeze(1));
  } else {
    const at::Tensor valid = key_valid.defined() ? key_valid : tensor_;  // (B, T_k)
    if (valid.defined()) allowed = allowed & valid.to(at::kBool).unsqueeze(1);
  }
  // A query always sees itself, so no softmax row is empty (NaN) for padding queries.
  allowed = allowed | (k_pos == q_pos).unsqueeze(0);
  return allowed.unsqueeze(1);  // (B, 1, T_q, T_k)
}

at::Tensor AttentionMask::window_starts() const {
  DTUNE_CHECK(kind_ != Kind::kPadding, "AttentionMask::window_starts: not defined for padding masks");
  if (kind_ == Kind::kCausal) return at::Tensor();
  const at::Tensor idx = at::arange(tensor_.size(1), tensor_.options()).expand_as(tensor_);
  return idx - position_ids_from_sequence_ids(tensor_);
}

at::Tensor position_ids_from_padding(const at::Tensor& valid) {
  return (valid.to(at::kLong).cumsum(1) - 1).clamp_min(0);
}

at::Tensor position_ids_from_sequence_ids(const at::Tensor& sequence_ids) {
  const int64_t T = sequence_ids.size(1);
  const at::Tensor idx =
      at::arange(T, at::TensorOptions().dtype(at::kLong).device(sequence_ids.device()))
          .expand_as(sequence_ids);
  at::Tensor starts = at::ones_like(sequence_ids, at::kBool);
  if (T > 1) {
    starts.slice(1, 1) = sequence_ids.slice(1, 1) != sequence_ids.slice(1, 0, T - 1);
  }
  const at::Tensor start_idx = std::get<0>(at::where(starts, idx, at::zeros_like(idx)).cummax(1));
  return idx - start_idx;
}

}  // namespace dtune
