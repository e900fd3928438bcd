// Grouped-query self-attention with RoPE, optional KV cache, through at::scaled_dot_product_attention
// (or dtune's fused CPU kernel, cpu_attention.h).
#include <ATen/ATen.h>

#include "dtune/kernels/cpu_attention.h"
#include "dtune/model/kv_cache.h"
#include "dtune/model/layers.h"
#include "dtune/model/rope.h"

namespace dtune {

at::Tensor Attention::forward(const at::Tensor& x, const AttentionInputs& in) const {
  const int64_t B = x.size(0), T = x.size(1);
  // (B, T, n*hd) -> (B, n, T, hd)
  at::Tensor q = q_proj.forward(x, in.training).view({B, T, n_heads, head_dim}).transpose(1, 2);
  at::Tensor k = k_proj.forward(x, in.training).view({B, T, n_kv_heads, head_dim}).transpose(1, 2);
  at::Tensor v = v_proj.forward(x, in.training).view({B, T, n_kv_heads, head_dim}).transpose(1, 2);
  q = apply_rotary(q, *in.cos, *in.sin, in.kernels);
  k = apply_rotary(k, *in.cos, *in.sin, in.kernels);
  if (in.cache != nullptr) std::tie(k, v) = in.cache->append(in.layer, k, v);  // (B, n_kv, T_k, hd)
  if (in.varlen_rows != nullptr) {
    // Packed rows as flash attention's variable-length batch: (B * T, heads, hd), causal within
    // each row, grouped K/V native to the kernel. No (B, 1, T, T) mask, no K/V copies, and
    // blocks across rows are never computed. Differentiable (ATen's FlashAttentionBackward0).
    const int64_t max_len = in.varlen_rows->max_len;
    const at::Tensor& cu = in.varlen_rows->cu_seqlens;
    const auto out = at::_flash_attention_forward(
        q.transpose(1, 2).reshape({B * T, n_heads, head_dim}), k.transpose(1, 2).reshape({B * T, n_kv_heads, head_dim}),
        v.transpose(1, 2).reshape({B * T, n_kv_heads, head_dim}), cu, cu, max_len, max_len, /*dropout_p=*/0.0,
        /*is_causal=*/true, /*return_debug_mask=*/false);
    // reshape, not view: the kernel's output layout is its own (a copy only if not contiguous).
    return o_proj.forward(std::get<0>(out).reshape({B, T, n_heads * head_dim}), in.training);
  }
  if (in.fused_cpu) {
    const at::Tensor out = cpu_attention(q, k, v, in.window_starts != nullptr ? *in.window_starts : at::Tensor());
    return o_proj.forward(out.transpose(1, 2).reshape({B, T, n_heads * head_dim}), in.training);
  }

  std::optional<at::Tensor> mask;
  if (in.mask != nullptr) mask = *in.mask;
  const bool is_causal = in.mask == nullptr;
  bool enable_gqa = n_kv_heads != n_heads;
  if (enable_gqa && mask && T == 1) {
    // Decoding one token per row against the cache: fold each K/V head's query heads into the
    // query length, (B, n_kv, group, hd), so every query head meets its K/V head as stored, with
    // no per-step copy of the cache (query head h uses K/V head h / group, as transformers).
    const int64_t group = n_heads / n_kv_heads;
    const at::Tensor folded_mask = mask->expand({B, mask->size(1), group, mask->size(3)});  // no copy
    const at::Tensor out = at::scaled_dot_product_attention(q.reshape({B, n_kv_heads, group, head_dim}), k, v,
                                                            folded_mask, /*dropout_p=*/0.0, /*is_causal=*/false);
    return o_proj.forward(out.reshape({B, T, n_heads * head_dim}), in.training);  // (B, n_kv, group, hd)
  }
  if (enable_gqa && mask && q.is_cuda()) {
    // On CUDA the fused SDPA kernels take grouped K/V only without a mask (flash takes no mask,
    // the memory-efficient kernel no enable_gqa), so a masked call would fall back to the math
    // kernel and its (B, heads, T, T) scores. Give each query head its K/V instead, as
    // transformers does (query head h uses K/V head h / (n_heads / n_kv_heads)).
    k = k.repeat_interleave(n_heads / n_kv_heads, /*dim=*/1);
    v = v.repeat_interleave(n_heads / n_kv_heads, /*dim=*/1);
    enable_gqa = false;
  }
  const at::Tensor out = at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, is_causal,
                                                          /*scale=*/std::nullopt, enable_gqa);  // (B, n_heads, T, hd)
  return o_proj.forward(out.transpose(1, 2).reshape({B, T, n_heads * head_dim}), in.training);
}

}  // namespace dtune
