// Causal-LM cross-entropy over the loss positions only, with the LM head and the softmax
// computed in chunks so the (tokens, vocab) fp32 logits are never materialised whole.
#pragma once

#include "dtune/core/ignore_index.h"  // kIgnoreIndex

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "dtune/kernels/kernel_policy.h"

namespace dtune {

// Sum of token cross-entropies and how many tokens it covers. The trainer divides the summed
// loss by the token count over all micro-batches and ranks.
struct LossSum {
  at::Tensor sum;          // () fp32, differentiable w.r.t. the hidden states
  int64_t num_tokens = 0;  // positions with a label
};

// The positions of a (B, T) batch that carry a loss, and the token each one must predict.
struct LossTargets {
  at::Tensor positions;  // (N) int64, flat row-major indices b * T + t into the batch
  at::Tensor targets;    // (N) int64, the token that position predicts
  int64_t count = 0;     // N, known on the host

  // Both tensors on device (plain copies; the trainer makes its own, asynchronous ones).
  LossTargets to(c10::Device device) const;
};

// Selects the loss positions from labels (B, T) int64 with kIgnoreIndex where there is none.
// labels_shifted = false (HF convention): labels[b, t] is the token at t, so position t - 1
// predicts it; true: labels[b, t] is the target of position t. Runs on the labels' device:
// the trainer selects from host labels, so the GPU step never waits for a count to come back.
LossTargets select_loss_targets(const at::Tensor& labels, bool labels_shifted);


// hidden (N, H) at the loss positions only (any float dtype), lm_head (V, H) frozen, targets
// (N) int64. Per chunk of chunk_size rows: logits = hidden @ lm_head^T in hidden's dtype (as
// HF's lm_head), then log-softmax and the target pick in fp32.
//
// When hidden requires grad (and grad mode is on) the gradient w.r.t. hidden is computed in
// the same pass ((softmax - onehot) @ lm_head per chunk) and kept, (N, H), instead of the
// logits; backward only scales it by the incoming gradient (the trainer's loss weight), in fp32
// with one rounding to hidden's dtype, so a bf16 gradient is not off by the weight's bf16
// rounding and an fp16 weight above 65504 does not become inf. lm_head receives no gradient (it
// is frozen in LoRA). kernels: the fused cpu_cross_entropy_ row kernel where it applies, or the
// ATen formulation (kernel_policy.h).
at::Tensor chunked_lm_loss_sum(const at::Tensor& hidden, const at::Tensor& lm_head,
                               const at::Tensor& targets, int64_t chunk_size,
                               KernelPolicy kernels = KernelPolicy::kDtune);

}  // namespace dtune
