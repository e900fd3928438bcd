// A preallocated key/value cache for incremental decoding: prefill a prompt in one forward,
// then one token per forward.
//
// Slots are shared by the batch: every forward writes its T new tokens of every row at slots
// [length, length + T). Padding is per slot: key_valid (B, T_max) marks which slots hold real
// tokens, so a left-padded prompt (recommended: all rows then end at the same slot and every
// new token is real) and right-padded prompts both work. Positions are per row and chosen by
// the caller (position_ids_from_padding for the prompt, then last position + 1 per row).
#pragma once

#include <cstdint>
#include <utility>

#include <ATen/core/Tensor.h>

namespace dtune {

class KVCache {
 public:
  KVCache() = default;
  // keys/values (num_layers, B, n_kv_heads, max_len, head_dim) in dtype on device.
  KVCache(int64_t num_layers, int64_t batch, int64_t n_kv_heads, int64_t max_len, int64_t head_dim,
          c10::ScalarType dtype, c10::Device device);

  int64_t length() const { return length_; }  // filled slots
  int64_t max_length() const { return max_len_; }
  int64_t batch_size() const { return batch_; }

  // Marks slots [length, length + T) real/padding; valid (B, T) bool (undefined = all real).
  // Returns key_valid for slots [0, length + T): (B, length + T) bool. Called once per forward,
  // before the layers. Throws dtune::Error when the cache would overflow.
  at::Tensor begin_step(int64_t num_new, const at::Tensor& valid);
  // k, v (B, n_kv_heads, T, head_dim) of layer are stored at slots [length, length + T).
  // Returns views of slots [0, length + T) of that layer's keys and values.
  std::pair<at::Tensor, at::Tensor> append(int64_t layer, const at::Tensor& k, const at::Tensor& v);
  // Advances length by the T of begin_step. Called once per forward, after the layers.
  void end_step();
  void reset() { length_ = 0; pending_ = 0; }

 private:
  at::Tensor keys_;       // (L, B, n_kv_heads, max_len, head_dim)
  at::Tensor values_;     // (L, B, n_kv_heads, max_len, head_dim)
  at::Tensor key_valid_;  // (B, max_len) bool
  int64_t batch_ = 0, max_len_ = 0, length_ = 0, pending_ = 0;
};

}  // namespace dtune
