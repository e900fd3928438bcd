// Cross-entropy over LM-head logits on CPU in one fused row kernel: per row the max, the
// log-sum-exp, the loss and (optionally) the gradient softmax - onehot, written over the logits.
// It stands in for ATen's logsumexp / gather / sub / exp / scatter / cast chain inside the
// chunked LM loss (lm_loss.h): three passes over each row instead of about ten, and bf16
// logits are read and written as bf16 (their fp32 copy is never made).
#pragma once

#include <ATen/core/Tensor.h>

namespace dtune {

// True when cpu_cross_entropy_ takes these logits: a contiguous (N, V) CPU tensor in fp32 or
// bf16, on an x86-64 CPU with AVX-512F.
bool cpu_cross_entropy_applies(const at::Tensor& logits);

// logits (N, V), targets (N) int64 in [0, V). Returns the sum over rows of
// logsumexp(logits[i]) - logits[i, targets[i]], computed in fp32 per row and summed in double
// (in a fixed order: the result does not depend on the thread count). With write_grad, logits is
// overwritten by softmax(logits[i]) - onehot(targets[i]), the gradient of that sum, in its dtype.
double cpu_cross_entropy_(const at::Tensor& logits, const at::Tensor& targets, bool write_grad);

}  // namespace dtune
