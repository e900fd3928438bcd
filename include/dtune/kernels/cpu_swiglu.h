// SwiGLU's gate on CPU in one pass: silu(gate) * up, and its backward in one pass. It replaces
// ATen's silu, mul and their backward ops (five passes) and keeps only gate and up for backward
// (ATen also keeps silu(gate)). One rounding to the dtype per output (ATen rounds silu(gate)
// first in bf16).
#pragma once

#include <ATen/core/Tensor.h>

namespace dtune {

// True when cpu_swiglu takes these: CPU tensors of one shape, contiguous, both fp32 or both
// bf16, on an x86-64 CPU with AVX-512F.
bool cpu_swiglu_applies(const at::Tensor& gate, const at::Tensor& up);

// silu(gate) * up, differentiable w.r.t. gate and up.
at::Tensor cpu_swiglu(const at::Tensor& gate, const at::Tensor& up);

}  // namespace dtune
