// Attention masks for SDPA: causal, padded and packed (block-diagonal causal) batches.
#include "dtune/model/attention_mask.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <vector>

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

AttentionMask AttentionMask::packed(const at::Tensor& sequence_ids, Rows rows) {
  AttentionMask m = packed(sequence_ids);
  DTUNE_CHECK(rows.cu_seqlens.defined() && rows.cu_seqlens.dim() == 1 && rows.cu_seqlens.scalar_type() == at::kInt &&
                  rows.cu_seqlens.device() == sequence_ids.device(),
              "AttentionMask::packed: cu_seqlens must be 1-D int32 on the sequence ids' device");
  m.rows_ = std::move(rows);
  return m;
}

AttentionMask::Rows packed_rows(const at::Tensor& sequence_ids) {
  DTUNE_CHECK(sequence_ids.dim() == 2 && sequence_ids.device().is_cpu(),
              "packed_rows: sequence_ids must be (B, T) on the CPU");
  const at::Tensor ids = sequence_ids.to(at::kLong).contiguous();
  const int64_t B = ids.size(0), T = ids.size(1);
  const int64_t* p = ids.const_data_ptr<int64_t>();
  std::vector<int32_t> cu{0};
  int64_t max_len = 0;
  DTUNE_CHECK(B * T <= std::numeric_limits<int32_t>::max(), "packed_rows: ", B * T, " tokens exceed int32 offsets");
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 1; t <= T; ++t) {
      if (t < T && p[b * T + t] == p[b * T + t - 1]) continue;
      const int64_t end = b * T + t;  // a row ends before token t of batch row b
      max_len = std::max<int64_t>(max_len, end - cu.back());
      cu.push_back(static_cast<int32_t>(end));
    }
  }
  AttentionMask::Rows rows;
  rows.cu_seqlens = at::tensor(cu, at::TensorOptions().dtype(at::kInt));
  rows.max_len = max_len;
  return rows;
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
