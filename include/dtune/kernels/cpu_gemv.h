// Few-row linear products on CPU (decoding): y = x W^T + b when x has only a handful of rows.
//
// Such a product reads every weight once and does two flops per weight, so its speed is the
// memory bandwidth. MKL runs it on one thread and reaches about half of what two cores stream
// (bench/cpu_gemv_probe.py, docs/bench/GENERATE.md). cpu_gemv splits the output features into
// one contiguous block of weight rows per intra-op thread (libtorch's OpenMP pool) and streams
// each block with AVX2 FMAs, all x rows against each group of 4 weight rows while it is in L1.
//
// Numerics: each output is an fp32 dot product accumulated in 8 lanes, then summed; it differs
// from BLAS only in summation order (~1e-7 relative), and does not depend on the thread count.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace dtune {

// Rows of x (tokens) up to which cpu_gemv is used; more rows make the product compute-bound,
// and BLAS GEMM is faster there.
inline constexpr int64_t kCpuGemvMaxRows = 8;

// True when cpu_gemv(x, w, bias) may stand in for at::linear(x, w, bias): x (..., in) and w
// (out, in) contiguous fp32 on the CPU, bias undefined or (out) fp32, 1..kCpuGemvMaxRows rows,
// no gradient needed (neither x nor w requires grad), and a CPU with AVX2 and FMA (x86-64 only;
// elsewhere always false). Inside another parallel region it runs on the calling thread.
bool cpu_gemv_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias);

// x (..., in) -> (..., out) = x W^T (+ bias). Call only where cpu_gemv_applies.
at::Tensor cpu_gemv(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias);

}  // namespace dtune
