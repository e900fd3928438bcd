// Preallocated KV cache: per-layer slot writes and the per-slot validity used for masks.
#include "dtune/model/kv_cache.h"

#include <ATen/ATen.h>

#include "dtune/core/error.h"

namespace dtune {

KVCache::KVCache(int64_t num_layers, int64_t batch, int64_t n_kv_heads, int64_t max_len,
                 int64_t head_dim, c10::ScalarType dtype, c10::Device device)
    : batch_(batch), max_len_(max_len) {
  const auto opts = at::TensorOptions().dtype(dtype).device(device);
  keys_ = at::zeros({num_layers, batch, n_kv_heads, max_len, head_dim}, opts);
  values_ = at::zeros({num_layers, batch, n_kv_heads, max_len, head_dim}, opts);
  key_valid_ = at::zeros({batch, max_len}, opts.dtype(at::kBool));
}

at::Tensor KVCache::begin_step(int64_t num_new, const at::Tensor& valid) {
  DTUNE_CHECK(keys_.defined(), "KVCache: not allocated (use Decoder::make_kv_cache)");
  DTUNE_CHECK(length_ + num_new <= max_len_, "KVCache: ", length_, " + ", num_new,
              " tokens exceed max_len ", max_len_, "; allocate a longer cache");
  at::Tensor slots = key_valid_.slice(1, length_, length_ + num_new);
  if (valid.defined()) {
    DTUNE_CHECK(valid.size(0) == batch_ && valid.size(1) == num_new,
                "KVCache: padding mask must be (", batch_, ", ", num_new, ")");
    slots.copy_(valid.to(at::kBool));
  } else {
    slots.fill_(true);
  }
  pending_ = num_new;
  return key_valid_.slice(1, 0, length_ + num_new);
}

std::pair<at::Tensor, at::Tensor> KVCache::append(int64_t layer, const at::Tensor& k,
                                                  const at::Tensor& v) {
  const int64_t end = length_ + k.size(2);
  DTUNE_CHECK(k.size(2) == pending_, "KVCache: append of ", k.size(2), " tokens after begin_step(",
              pending_, ")");
  at::Tensor kl = keys_[layer], vl = values_[layer];  // (B, n_kv_heads, max_len, head_dim)
  kl.slice(2, length_, end).copy_(k);
  vl.slice(2, length_, end).copy_(v);
  return {kl.slice(2, 0, end), vl.slice(2, 0, end)};
}

void KVCache::end_step() {
  length_ += pending_;
  pending_ = 0;
}

}  // namespace dtune
