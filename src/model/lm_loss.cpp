// Chunked LM head + cross-entropy with the hidden-state gradient computed in the forward pass
// (on CPU through the fused row kernel of cpu_cross_entropy.h, where kernel_choice.h picks it).
#include "dtune/model/lm_loss.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include "dtune/core/error.h"
#include "dtune/kernels/cpu_cross_entropy.h"
#include "dtune/kernels/kernel_choice.h"

namespace dtune {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Returns the loss sum and, when want_grad, d(sum)/d(hidden) (N, H) in hidden's dtype.
std::pair<at::Tensor, at::Tensor> run_chunks(const at::Tensor& hidden, const at::Tensor& lm_head,
                                             const at::Tensor& targets, int64_t chunk_size,
                                             KernelPolicy kernels, bool want_grad) {
  const int64_t n = hidden.size(0);
  at::Tensor total = at::zeros({}, hidden.options().dtype(at::kFloat));
  at::Tensor grad = want_grad ? at::empty_like(hidden) : at::Tensor();
  for (int64_t begin = 0; begin < n; begin += chunk_size) {
    const int64_t end = std::min(n, begin + chunk_size);
    const at::Tensor h = hidden.slice(0, begin, end);                    // (c, H)
    const at::Tensor t = targets.slice(0, begin, end).unsqueeze(1);      // (c, 1)
    at::Tensor logits = at::matmul(h, lm_head.t());  // (c, V) in the model dtype
    if (use_cpu_cross_entropy(kernels, logits)) {
      // One fused pass per row; the logits become the gradient softmax - onehot in place.
      total += cpu_cross_entropy_(logits, targets.slice(0, begin, end), want_grad);
      if (want_grad) grad.slice(0, begin, end).copy_(at::matmul(logits, lm_head));
      continue;
    }
    logits = logits.to(at::kFloat);  // (c, V) fp32
    const at::Tensor lse = at::logsumexp(logits, -1, /*keepdim=*/true);   // (c, 1)
    total += (lse - logits.gather(1, t)).sum();
    if (want_grad) {
      at::Tensor p = (logits - lse).exp_();  // softmax (c, V)
      p.scatter_add_(1, t, at::full_like(t, -1.0, p.options()));
      grad.slice(0, begin, end).copy_(at::matmul(p.to(hidden.scalar_type()), lm_head));
    }
  }
  return {total, grad};
}

// grad (N, H) in the model dtype times the incoming () fp32 gradient, multiplied in fp32 and
// rounded once. The incoming gradient is the trainer's loss weight (loss scale / global tokens):
// rounded to bf16 first it would scale the whole gradient by up to 2^-9, and in fp16 a weight
// above 65504 would become inf. Rows in blocks, so the fp32 temporary stays small.
at::Tensor scale_in_fp32(const at::Tensor& grad, const at::Tensor& weight) {
  const at::Tensor w = weight.to(at::kFloat);
  if (grad.scalar_type() == at::kFloat) return grad * w;
  constexpr int64_t kRows = 1024;
  at::Tensor out = at::empty_like(grad);
  for (int64_t begin = 0; begin < grad.size(0); begin += kRows) {
    const int64_t end = std::min(grad.size(0), begin + kRows);
    out.slice(0, begin, end).copy_(grad.slice(0, begin, end).to(at::kFloat).mul_(w));
  }
  return out;
}

struct ChunkedLmLoss : public torch::autograd::Function<ChunkedLmLoss> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden,
                            const at::Tensor& lm_head, const at::Tensor& targets,
                            int64_t chunk_size, KernelPolicy kernels) {
    auto [total, grad] = run_chunks(hidden, lm_head, targets, chunk_size, kernels, /*want_grad=*/true);
    ctx->save_for_backward({grad});
    return total;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor grad = ctx->get_saved_variables()[0];
    return {scale_in_fp32(grad, grad_outputs[0]), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

LossTargets LossTargets::to(c10::Device device) const {
  if (positions.device() == device) return *this;
  LossTargets out;
  out.positions = positions.to(device);
  out.targets = targets.to(device);
  out.count = count;
  return out;
}

LossTargets select_loss_targets(const at::Tensor& labels, bool labels_shifted) {
  DTUNE_CHECK(labels.dim() == 2, "labels must be (B, T), got ", labels.dim(), " dimensions");
  const int64_t B = labels.size(0);
  // next[b, t] = the token position t predicts.
  const at::Tensor next =
      labels_shifted ? labels
                     : at::cat({labels.slice(1, 1), at::full({B, 1}, kIgnoreIndex, labels.options())}, 1);
  const at::Tensor flat = next.reshape(-1);
  LossTargets out;
  out.positions = at::nonzero(flat != kIgnoreIndex).squeeze(1);  // a host sync where labels live
  out.targets = flat.index_select(0, out.positions);
  out.count = out.positions.size(0);
  return out;
}

at::Tensor chunked_lm_loss_sum(const at::Tensor& hidden, const at::Tensor& lm_head,
                               const at::Tensor& targets, int64_t chunk_size, KernelPolicy kernels) {
  DTUNE_CHECK(chunk_size > 0, "loss chunk size must be > 0, got ", chunk_size);
  DTUNE_CHECK(hidden.dim() == 2 && targets.dim() == 1 && hidden.size(0) == targets.size(0),
              "chunked_lm_loss_sum: hidden (N, H) and targets (N) must agree");
  if (hidden.requires_grad() && at::GradMode::is_enabled()) {
    return ChunkedLmLoss::apply(hidden, lm_head.detach(), targets, chunk_size, kernels);
  }
  at::NoGradGuard no_grad;
  return run_chunks(hidden, lm_head, targets, chunk_size, kernels, /*want_grad=*/false).first;
}

}  // namespace dtune
