// Rotary embedding on CPU in one pass, and its backward in one pass: x * cos + rotate_half(x) * sin
// for q or k. It replaces ATen's slice, neg, cat, two muls and an add (and their backward);
// backward keeps only cos and sin. One rounding to the dtype per output (ATen rounds each op in
// bf16).
#pragma once

#include <ATen/core/Tensor.h>

namespace dtune {

// True when cpu_rotary takes these: x (B, n, T, D) on the CPU with its last dim contiguous,
// cos and sin (B, T, D) contiguous, all fp32 or all bf16, D a multiple of 32, cos/sin not
// requiring grad, on an x86-64 CPU with AVX-512F.
bool cpu_rotary_applies(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// -> (B, n, T, D), laid out (B, T, n, D) in memory (rows as attention reads them).
// Differentiable w.r.t. x.
at::Tensor cpu_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace dtune
