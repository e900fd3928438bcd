// AdamW update on one flat tensor; see adamw.h.
#include "dtune/train/adamw.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "dtune/core/error.h"

namespace dtune {

AdamW::AdamW(at::Tensor params, at::Tensor grads, AdamWOptions options)
    : params_(std::move(params)), grads_(std::move(grads)), options_(options) {
  DTUNE_CHECK(params_.sizes() == grads_.sizes(), "AdamW: params and grads differ in shape");
  exp_avg_ = at::zeros_like(params_);
  exp_avg_sq_ = at::zeros_like(params_);
  step_tensor_ = at::zeros({}, params_.options());
}

void AdamW::step(double lr) {
  at::NoGradGuard no_grad;
  ++step_;
  if (params_.is_cuda()) {
    step_tensor_.fill_(static_cast<double>(step_));
    at::_fused_adamw_({params_}, {grads_}, {exp_avg_}, {exp_avg_sq_}, {}, {step_tensor_}, lr, options_.beta1,
                      options_.beta2, options_.weight_decay, options_.eps, /*amsgrad=*/false,
                      /*maximize=*/false);
    return;
  }
  // torch.optim.adamw._single_tensor_adamw, in the same order of operations.
  params_.mul_(1.0 - lr * options_.weight_decay);
  exp_avg_.lerp_(grads_, 1.0 - options_.beta1);
  exp_avg_sq_.mul_(options_.beta2).addcmul_(grads_, grads_, 1.0 - options_.beta2);
  const double bias1 = 1.0 - std::pow(options_.beta1, static_cast<double>(step_));
  const double bias2 = 1.0 - std::pow(options_.beta2, static_cast<double>(step_));
  const double step_size = lr / bias1;
  const at::Tensor denom = (exp_avg_sq_.sqrt() / std::sqrt(bias2)).add_(options_.eps);
  params_.addcdiv_(exp_avg_, denom, -step_size);
}

void AdamW::load_state(const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq, int64_t steps) {
  DTUNE_CHECK(exp_avg.numel() == params_.numel() && exp_avg_sq.numel() == params_.numel(),
              "checkpoint optimizer state has ", exp_avg.numel(), " values but the adapter has ",
              params_.numel(), ": the checkpoint belongs to a different lora config");
  at::NoGradGuard no_grad;
  exp_avg_.copy_(exp_avg.reshape({-1}));
  exp_avg_sq_.copy_(exp_avg_sq.reshape({-1}));
  step_ = steps;
}

}  // namespace dtune
