// Rotary position embedding (HF rotate-half convention) with default and Llama 3.1 ("llama3")
// frequency scaling. cos/sin are computed per call from the positions in fp32, as HF does.
#pragma once

#include <cstdint>
#include <utility>

#include <ATen/core/Tensor.h>

#include "dtune/kernels/kernel_policy.h"

namespace dtune {

struct ModelConfig;

class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  // Throws dtune::Error for rope types other than "default" and "llama3".
  RotaryEmbedding(const ModelConfig& config, c10::Device device);

  // position_ids (B, T) int64, any device -> cos, sin (B, T, head_dim) in dtype on the
  // model's device, computed from the positions as HF does (no table, no host synchronisation).
  std::pair<at::Tensor, at::Tensor> cos_sin(const at::Tensor& position_ids, c10::ScalarType dtype) const;

  const at::Tensor& inv_freq() const { return inv_freq_; }  // (head_dim / 2) fp32

 private:
  at::Tensor inv_freq_;   // (head_dim / 2) fp32
  double attention_scaling_ = 1.0;
};

// x (B, n_heads, T, head_dim), cos/sin (B, T, head_dim): x * cos + rotate_half(x) * sin
// (dtune's fused cpu_rotary where kernels allows it and it applies; kernel_policy.h).
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                        KernelPolicy kernels = KernelPolicy::kDtune);

}  // namespace dtune
