// RMSNorm on CPU in one pass per row, and its input gradient in one pass, with HF's numerics
// (LlamaRMSNorm: fp32 statistics, x * rstd cast to the dtype, then times the weight). It
// replaces ATen's cast, pow, mean, add, rsqrt, mul, cast, mul chain and its backward; backward
// keeps x and one fp32 rstd per row. The weight is frozen (no gradient).
#pragma once

#include <ATen/core/Tensor.h>

namespace dtune {

// True when cpu_rms_norm takes these: x (..., H) contiguous, weight (H) contiguous, both CPU,
// both fp32 or both bf16, weight not requiring grad, on an x86-64 CPU with AVX-512F.
bool cpu_rms_norm_applies(const at::Tensor& x, const at::Tensor& weight);

// weight * (x * rsqrt(mean(x^2) + eps)), differentiable w.r.t. x.
at::Tensor cpu_rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace dtune
