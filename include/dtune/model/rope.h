// Rotary position embedding (HF rotate-half convention) with default and Llama 3.1 ("llama3")
// frequency scaling. cos/sin tables are computed in fp32 and cached on the model's device.
#pragma once

#include <cstdint>
#include <utility>

#include <ATen/core/Tensor.h>

namespace dtune {

struct ModelConfig;

class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  // Throws dtune::Error for rope types other than "default" and "llama3".
  RotaryEmbedding(const ModelConfig& config, c10::Device device);

  // position_ids (B, T) int64 -> cos, sin (B, T, head_dim) in dtype. Grows the cached fp32
  // tables (to the next power of two) when a position exceeds them.
  std::pair<at::Tensor, at::Tensor> cos_sin(const at::Tensor& position_ids, c10::ScalarType dtype);

  const at::Tensor& inv_freq() const { return inv_freq_; }  // (head_dim / 2) fp32

 private:
  void grow_tables(int64_t num_positions);

  at::Tensor inv_freq_;   // (head_dim / 2) fp32
  at::Tensor cos_table_;  // (P, head_dim) fp32: cos(p * inv_freq) duplicated over both halves
  at::Tensor sin_table_;
  double attention_scaling_ = 1.0;
};

// x (B, n_heads, T, head_dim), cos/sin (B, T, head_dim): x * cos + rotate_half(x) * sin.
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace dtune
