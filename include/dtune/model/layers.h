// The blocks of a Llama/Qwen2 decoder layer, written functionally on tensors the Decoder owns:
// RMSNorm, GQA self-attention with RoPE, SwiGLU MLP.
#pragma once

#include <cstdint>
#include <utility>

#include <ATen/core/Tensor.h>

#include "dtune/kernels/kernel_policy.h"
#include "dtune/lora/lora_linear.h"
#include "dtune/model/attention_mask.h"

namespace dtune {

class KVCache;

// HF LlamaRMSNorm: normalise in fp32, cast back to x's dtype, then multiply by weight (in
// x's dtype). x (..., H), weight (H). kernels: dtune's fused kernel where it applies, or the
// ATen formulation (kernel_policy.h).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps,
                    KernelPolicy kernels = KernelPolicy::kDtune);

// What one attention call needs besides the weights.
struct AttentionInputs {
  const at::Tensor* cos = nullptr;   // (B, T, head_dim) in the activation dtype
  const at::Tensor* sin = nullptr;
  const at::Tensor* mask = nullptr;  // (B, 1, T, T_k) bool, true = attend; null = causal
  // dtune's kernels or the libtorch reference for RoPE, RMSNorm and SwiGLU in this call
  // (kernel_policy.h; the Decoder passes DecoderOptions::kernels).
  KernelPolicy kernels = KernelPolicy::kDtune;
  // Instead of SDPA and mask: cpu_attention (cpu_attention.h), with these window starts (B, T)
  // int64 (null = plain causal). The Decoder picks it where use_cpu_attention (kernel_choice.h).
  bool fused_cpu = false;
  const at::Tensor* window_starts = nullptr;
  // Instead of SDPA and mask: flash attention's varlen kernel over packed rows (CUDA, fp16/bf16),
  // rows as AttentionMask::Rows (cu_seqlens over the flattened B * T tokens). Null = not used.
  const AttentionMask::Rows* varlen_rows = nullptr;
  KVCache* cache = nullptr;          // incremental decoding; null in training
  int64_t layer = 0;                 // index into the cache
  bool training = false;             // enables LoRA dropout
};

struct Attention {
  LoraLinear q_proj, k_proj, v_proj, o_proj;  // q (n_heads*hd, H); k, v (n_kv*hd, H); o (H, n_heads*hd)
  int64_t n_heads = 0, n_kv_heads = 0, head_dim = 0;

  // x (B, T, H) -> (B, T, H). GQA through SDPA's enable_gqa (no repeated K/V copies), or
  // through cpu_attention when in.fused_cpu.
  at::Tensor forward(const at::Tensor& x, const AttentionInputs& in) const;
};

struct Mlp {
  LoraLinear gate_proj, up_proj, down_proj;  // gate/up (I, H), down (H, I)
  // x (B, T, H) -> (B, T, H): down(silu(gate(x)) * up(x)).
  at::Tensor forward(const at::Tensor& x, bool training, KernelPolicy kernels = KernelPolicy::kDtune) const;
  // x (B, T, H) -> (B, T, I): silu(gate(x)) * up(x), the down projection's input (the gate
  // through cpu_swiglu where kernels allows it and it applies).
  at::Tensor gated(const at::Tensor& x, bool training, KernelPolicy kernels = KernelPolicy::kDtune) const;
};

struct DecoderLayer {
  at::Tensor input_norm;          // (H)
  at::Tensor post_attention_norm; // (H)
  Attention attention;
  Mlp mlp;
  double eps = 1e-6;

  // Pre-norm residual block: h + attn(norm(h)), then + mlp(norm(.)). h (B, T, H).
  at::Tensor forward(const at::Tensor& h, const AttentionInputs& in) const;
  // The block up to the MLP's down projection: {a, m} with a = h + attn(norm(h)) and
  // m = mlp.gated(norm(a)), so that forward(h) = a + mlp.down_proj.forward(m).
  std::pair<at::Tensor, at::Tensor> forward_to_down_proj(const at::Tensor& h, const AttentionInputs& in) const;
};

}  // namespace dtune
