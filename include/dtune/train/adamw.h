// AdamW over the flat fp32 LoRA bucket, with torch.optim.AdamW's update (decoupled weight decay,
// bias correction). On CUDA it runs ATen's fused kernel; on CPU the single-tensor formula, which
// matches torch.optim.AdamW (foreach=False) bit for bit.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace dtune {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

class AdamW {
 public:
  // params and grads: the bucket's flat fp32 tensors (same shape and device).
  AdamW(at::Tensor params, at::Tensor grads, AdamWOptions options);

  // One update with learning rate lr from the current grads.
  void step(double lr);

  int64_t steps_taken() const { return step_; }
  // State for checkpoints: exp_avg and exp_avg_sq (flat fp32) and the step count.
  const at::Tensor& exp_avg() const { return exp_avg_; }
  const at::Tensor& exp_avg_sq() const { return exp_avg_sq_; }
  void load_state(const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq, int64_t steps);

 private:
  at::Tensor params_, grads_, exp_avg_, exp_avg_sq_;
  at::Tensor step_tensor_;  // fp32 scalar on device, for the fused kernel
  AdamWOptions options_;
  int64_t step_ = 0;
};

}  // namespace dtune
