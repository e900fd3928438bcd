// Causal-LM cross-entropy over the loss positions only, with the LM head and the softmax
// computed in chunks so the (tokens, vocab) fp32 logits are never materialised whole.
#pragma once

#include "dtune/core/ignore_index.h"  // kIgnoreIndex

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace dtune {

// Sum of token cross-entropies and how many tokens it covers. The trainer divides the summed
// loss by the token count over all micro-batches and ranks.
struct LossSum {
  at::Tensor sum;          // () fp32, differentiable w.r.t. the hidden states
  int64_t num_tokens = 0;  // positions with a label
};


// hidden (N, H) at the loss positions only (any float dtype), lm_head (V, H) frozen, targets
// (N) int64. Per chunk of chunk_size rows: logits = hidden @ lm_head^T in hidden's dtype (as
// HF's lm_head), then log-softmax and the target pick in fp32.
//
// When hidden requires grad (and grad mode is on) the gradient w.r.t. hidden is computed in
// the same pass ((softmax - onehot) @ lm_head per chunk) and kept, (N, H), instead of the
// logits; backward only scales it. lm_head receives no gradient (it is frozen in LoRA).
at::Tensor chunked_lm_loss_sum(const at::Tensor& hidden, const at::Tensor& lm_head,
                               const at::Tensor& targets, int64_t chunk_size);

}  // namespace dtune
