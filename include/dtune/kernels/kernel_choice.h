// The one place where a model's call site learns whether dtune's kernel runs: the policy
// (kernel_policy.h, from `model.attention`) and the kernel's own limits (its *_applies /
// *_supported). Each function is true exactly when the kernel it names stands in for the
// libtorch reference formulation at that call; false means "run the reference".
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "dtune/kernels/kernel_policy.h"

namespace dtune {

// cpu_rms_norm (cpu_rms_norm.h) for HF RMSNorm of x (..., H) with weight (H).
bool use_cpu_rms_norm(KernelPolicy policy, const at::Tensor& x, const at::Tensor& weight);
// cpu_rotary (cpu_rotary.h) for q or k (B, heads, T, D) with cos/sin (B, T, D).
bool use_cpu_rotary(KernelPolicy policy, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
// cpu_swiglu (cpu_swiglu.h) for silu(gate) * up.
bool use_cpu_swiglu(KernelPolicy policy, const at::Tensor& gate, const at::Tensor& up);
// cpu_cross_entropy_ (cpu_cross_entropy.h) for one chunk of LM-head logits (c, V).
bool use_cpu_cross_entropy(KernelPolicy policy, const at::Tensor& logits);
// cpu_gemv (cpu_gemv.h) for at::linear(x, w, bias) (bias may be undefined).
bool use_cpu_gemv(KernelPolicy policy, const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias);
// cpu_attention (cpu_attention.h) for causal or packed attention over seq_len tokens without a
// KV cache (the caller checks that), instead of SDPA.
bool use_cpu_attention(KernelPolicy policy, c10::ScalarType dtype, c10::Device device, int64_t head_dim,
                       int64_t seq_len);
// Flash attention's varlen kernel (at::_flash_attention_forward over cu_seqlens) for packed rows
// on CUDA without a KV cache, instead of SDPA with a (B, 1, T, T) mask: fp16/bf16, head_dim a
// multiple of 8 up to 256, and a device that runs flash attention (flash_capable: compute
// capability >= 8.0, which the caller knows; this layer asks no device).
bool use_flash_varlen_attention(KernelPolicy policy, c10::ScalarType dtype, c10::Device device, int64_t head_dim,
                                bool flash_capable);

}  // namespace dtune
