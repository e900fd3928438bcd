// LoraLinear: frozen base projection plus an optional fp32 low-rank adapter (PEFT semantics).
#include "dtune/lora/lora_linear.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "dtune/core/error.h"
#include "dtune/kernels/cpu_gemv.h"
#include "dtune/kernels/kernel_choice.h"
#include "dtune/lora/lora_adapter.h"

namespace dtune {

LoraLinear::LoraLinear(at::Tensor weight, at::Tensor bias, KernelPolicy kernels)
    : weight_(std::move(weight)), bias_(std::move(bias)), kernels_(kernels) {
  DTUNE_CHECK(weight_.defined() && weight_.dim() == 2, "LoraLinear: weight must be 2-D (out, in)");
  DTUNE_CHECK(!bias_.defined() || (bias_.dim() == 1 && bias_.size(0) == weight_.size(0)),
              "LoraLinear: bias must be (out) = (", weight_.size(0), ")");
  weight_.requires_grad_(false);
  if (bias_.defined()) bias_.requires_grad_(false);
}

int64_t LoraLinear::in_features() const { return weight_.size(1); }
int64_t LoraLinear::out_features() const { return weight_.size(0); }

at::Tensor LoraLinear::forward(const at::Tensor& x, bool training) const {
  // Decoding on CPU (a few rows, no autograd): the threaded few-row kernel; otherwise BLAS.
  at::Tensor y = use_cpu_gemv(kernels_, x, weight_, bias_)
                     ? cpu_gemv(x, weight_, bias_)
                     : at::linear(x, weight_, bias_.defined() ? std::optional<at::Tensor>(bias_)
                                                              : std::optional<at::Tensor>());
  if (!has_adapter()) return y;
  const at::Tensor x_in = (training && dropout_ > 0.0) ? at::dropout(x, dropout_, true) : x;
  // (..., in) @ (in, r) @ (r, out) in the activation dtype; .to() is differentiable, so the
  // gradients land in the fp32 masters.
  const at::Tensor a = lora_a_.to(x.scalar_type());
  // B^T as a contiguous (r, out) copy (tiny): backward's dY B then runs as dY (B^T)^T, which BLAS
  // does ~2.5x faster than against the (out, r) row-major B at these skinny shapes.
  const at::Tensor bt = lora_b_.to(x.scalar_type()).t().contiguous();
  // y + scale * (x A^T) B^T as one addmm: the scale and the sum ride in the GEMM, so neither
  // pass over the (tokens, out) product runs, forward or backward.
  const at::Tensor xa = at::linear(x_in, a).reshape({-1, a.size(0)});  // (tokens, r)
  return at::addmm(y.reshape({-1, y.size(-1)}), xa, bt, /*beta=*/1, /*alpha=*/scale_).view(y.sizes());
}

void LoraLinear::add_adapter(int64_t r, double scale, double dropout, at::Generator& gen) {
  DTUNE_CHECK(!has_adapter(), "LoraLinear: an adapter is already attached");
  DTUNE_CHECK(r >= 1, "lora.r must be >= 1, got ", r);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features()));
  at::Tensor a = at::empty({r, in_features()}, at::TensorOptions().dtype(at::kFloat));
  a.uniform_(-bound, bound, gen);
  lora_a_ = a.to(weight_.device()).requires_grad_(true);
  lora_b_ = at::zeros({out_features(), r}, at::TensorOptions().dtype(at::kFloat).device(weight_.device()))
                .requires_grad_(true);
  scale_ = scale;
  dropout_ = dropout;
}

void LoraLinear::add_adapter(const at::Tensor& a, const at::Tensor& b, double scale, double dropout) {
  DTUNE_CHECK(!has_adapter(), "LoraLinear: an adapter is already attached");
  DTUNE_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(0) >= 1 && b.size(1) == a.size(0) &&
                  a.size(1) == in_features() && b.size(0) == out_features(),
              "LoRA weights of shapes ", a.sizes(), " and ", b.sizes(), " do not fit a layer of (out, in) = (",
              out_features(), ", ", in_features(), "): expected (r, ", in_features(), ") and (", out_features(), ", r)");
  at::NoGradGuard no_grad;
  const auto fp32 = at::TensorOptions().dtype(at::kFloat).device(weight_.device());
  lora_a_ = a.to(fp32, /*non_blocking=*/false, /*copy=*/true).requires_grad_(true);
  lora_b_ = b.to(fp32, /*non_blocking=*/false, /*copy=*/true).requires_grad_(true);
  scale_ = scale;
  dropout_ = dropout;
}

void LoraLinear::merge_adapter() {
  if (!has_adapter()) return;
  at::NoGradGuard no_grad;
  const at::Tensor delta = lora_delta(lora_a_.detach(), lora_b_.detach(), scale_);  // (out, in) fp32
  weight_ = (weight_.to(at::kFloat) + delta).to(weight_.scalar_type());
  lora_a_ = at::Tensor();
  lora_b_ = at::Tensor();
}

}  // namespace dtune
