// Which keys each query may attend to: plain causal, causal with padding, or packed rows
// (block-diagonal causal from per-token sequence ids). Also the matching position ids.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace dtune {

class AttentionMask {
 public:
  enum class Kind { kCausal, kPadding, kPacked };

  // Packed rows in flash attention's variable-length form, over the B * T tokens flattened:
  // row i is tokens [cu_seqlens[i], cu_seqlens[i + 1]). Every maximal run of one sequence id
  // within a batch row is a row (a run of pad ids too: it only sees itself).
  struct Rows {
    at::Tensor cu_seqlens;  // (rows + 1) int32, starts at 0, ends at B * T
    int64_t max_len = 0;    // the longest row; a host value, so no device read is needed
  };

  // Every token is real; query t sees keys 0..t. Fastest (SDPA is_causal, no mask tensor).
  static AttentionMask causal();
  // valid (B, T) bool or integer, 1 = real token, 0 = padding (HF's attention_mask); left or
  // right padding. Query t sees real keys 0..t. A padding query sees itself (so no softmax row
  // is empty); its outputs are meaningless and must carry no loss.
  static AttentionMask padding(const at::Tensor& valid);
  // sequence_ids (B, T) int64: tokens of one packed sequence share an id and are contiguous.
  // Query t sees keys j <= t with the same id, so attention never crosses sequences. Pad tokens
  // may use any id (e.g. -1); they only see their own id.
  static AttentionMask packed(const at::Tensor& sequence_ids);
  // The same, with its rows (packed_rows(), moved to the device): lets CUDA run flash
  // attention's varlen kernel instead of a (B, 1, T, T) mask.
  static AttentionMask packed(const at::Tensor& sequence_ids, Rows rows);

  Kind kind() const { return kind_; }
  const at::Tensor& tensor() const { return tensor_; }  // valid or sequence ids; undefined if causal
  const Rows& rows() const { return rows_; }            // kPacked with rows only; else undefined

  // Boolean SDPA mask (B, 1, T_q, T_k), true = attend, for queries at key slots
  // [T_k - T_q, T_k). key_valid (B, T_k) bool marks real keys (undefined = all real) and
  // replaces the padding tensor when a KV cache supplies earlier keys. Not for kCausal
  // without cache (use is_causal) and not for kPacked with a cache.
  at::Tensor build_sdpa_mask(int64_t q_len, const at::Tensor& key_valid) const;

  // For kPacked: (B, T) int64, the first key each query sees (its sequence's start), the form
  // cpu_attention takes. Undefined for kCausal (every window starts at 0); not for kPadding.
  at::Tensor window_starts() const;

 private:
  Kind kind_ = Kind::kCausal;
  at::Tensor tensor_;
  Rows rows_;
};

// The Rows of sequence_ids (B, T) int64 on the CPU (compute them where the batch is built).
AttentionMask::Rows packed_rows(const at::Tensor& sequence_ids);

// Position ids (B, T) int64 for a padded batch: the running count of real tokens minus one,
// clamped at 0 (left padding: the first real token gets 0, as HF generate does).
at::Tensor position_ids_from_padding(const at::Tensor& valid);
// Position ids (B, T) int64 for packed rows: restart at 0 where the sequence id changes.
at::Tensor position_ids_from_sequence_ids(const at::Tensor& sequence_ids);

}  // namespace dtune
