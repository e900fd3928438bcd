// LoraLinear: a frozen linear layer y = W x + b with an optional low-rank adapter
// y += scale * B (A (dropout(x))), as PEFT's lora.Linear.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dtune/kernels/kernel_policy.h"
#include "dtune/lora/lora_options.h"

namespace dtune {

// One projection of the decoder. The base weight is frozen (requires_grad false) in the model
// dtype; the adapter matrices are fp32 masters that require grad. The LoRA path is computed in
// the activation dtype: A and B are cast with differentiable .to(), so gradients reach the fp32
// masters in fp32 (autocast-like mixed precision, as PEFT under torch.autocast).
class LoraLinear {
 public:
  LoraLinear() = default;
  // weight (out, in); bias (out) or an undefined tensor. kernels: whether the base product may
  // run in dtune's few-row cpu_gemv when decoding on CPU (kernel_policy.h), or always at::linear.
  LoraLinear(at::Tensor weight, at::Tensor bias, KernelPolicy kernels = KernelPolicy::kDtune);

  // x (..., in) -> (..., out). Dropout on the adapter input only when training and p > 0;
  // it draws from the default generator of x's device (so checkpoint recomputation can
  // replay it by restoring that generator's state).
  at::Tensor forward(const at::Tensor& x, bool training) const;

  // Adds a fresh adapter: A (r, in) ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming_uniform with
  // a = sqrt(5)) drawn from gen on the CPU in fp32, B (out, r) = 0; both moved to the weight's
  // device, fp32, requires_grad. Throws if an adapter is already attached.
  void add_adapter(int64_t r, double scale, double dropout, at::Generator& gen);
  // Adds an adapter holding copies of saved values: a (r, in), b (out, r), any float dtype and
  // device (stored as fp32 masters on the weight's device, requires_grad). Throws dtune::Error
  // naming the expected shapes when they do not fit this layer, or if an adapter is attached.
  void add_adapter(const at::Tensor& a, const at::Tensor& b, double scale, double dropout);
  bool has_adapter() const { return lora_a_.defined(); }
  // W += scale * B @ A (in fp32, rounded once to W's dtype), then drops the adapter.
  void merge_adapter();

  const at::Tensor& weight() const { return weight_; }
  const at::Tensor& bias() const { return bias_; }
  at::Tensor& lora_a() { return lora_a_; }  // (r, in) fp32
  at::Tensor& lora_b() { return lora_b_; }  // (out, r) fp32
  const at::Tensor& lora_a() const { return lora_a_; }
  const at::Tensor& lora_b() const { return lora_b_; }
  double scale() const { return scale_; }
  int64_t in_features() const;
  int64_t out_features() const;

 private:
  at::Tensor weight_;  // (out, in), model dtype, frozen
  at::Tensor bias_;    // (out) or undefined
  at::Tensor lora_a_;  // (r, in) fp32, requires grad; undefined without adapter
  at::Tensor lora_b_;  // (out, r) fp32, requires grad
  double scale_ = 0.0;
  double dropout_ = 0.0;
  KernelPolicy kernels_ = KernelPolicy::kDtune;
};

}  // namespace dtune
