// dtune's fused causal attention for CPU training: forward and backward in one kernel each,
// instead of libtorch's SDPA (its CPU flash kernel parallelises the backward over batch x heads
// only, and reached ~56 GFLOP/s at SmolLM2's shapes; docs/bench/MODEL_CPU.md).
//
// Semantics: softmax(scale * Q K^T) V where query t sees keys [window_start(t), t]: plain causal
// when window_starts is undefined, packed rows (attention_mask.h) when it holds each query's
// sequence start. GQA: query head h reads kv head h / (H / Hkv). Arithmetic is fp32 for fp32
// and bf16 inputs; results do not depend on the thread count. Backward keeps the scores'
// gradient of each block pair (B x H x T^2/2 floats, freed after the call).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace dtune {

// True when cpu_attention takes this configuration: CPU tensors in fp32 or bf16, head_dim a
// multiple of 16 up to 256, seq_len up to 4096 (the backward's
// scratch grows with T^2), on an x86-64 CPU with AVX-512F. Everywhere
// else the model uses at::scaled_dot_product_attention.
bool cpu_attention_supported(c10::ScalarType dtype, c10::Device device, int64_t head_dim, int64_t seq_len);

// q (B, H, T, D); k, v (B, Hkv, T, D) with H % Hkv == 0, any strides with the last dim
// contiguous; window_starts (B, T) int64 with 0 <= start <= t, or undefined (causal).
// -> (B, H, T, D), laid out (B, T, H, D) in memory. Differentiable w.r.t. q, k and v.
at::Tensor cpu_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         const at::Tensor& window_starts);

}  // namespace dtune
