// Activation checkpointing as a custom autograd function with RNG-state replay.
#include "dtune/model/activation_checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include "dtune/core/error.h"

namespace dtune {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs that is not a tensor: the block and the RNG state before its forward.
struct CheckpointState : torch::CustomClassHolder {
  CheckpointFn fn;
  at::Tensor rng_state;
};

at::Generator default_generator(const at::Tensor& t) {
  return at::globalContext().defaultGenerator(t.device());
}

at::Tensor get_rng_state(const at::Tensor& t) {
  at::Generator gen = default_generator(t);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(const at::Tensor& t, const at::Tensor& state) {
  at::Generator gen = default_generator(t);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& input,
                               c10::intrusive_ptr<CheckpointState> state) {
    state->rng_state = get_rng_state(input);
    ctx->save_for_backward({input});
    variable_list outs = state->fn(input);  // grad mode is off inside a custom forward
    ctx->saved_data["state"] = at::IValue::make_capsule(std::move(state));
    return outs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto state = c10::static_intrusive_pointer_cast<CheckpointState>(
        ctx->saved_data["state"].toCapsule());
    const at::Tensor input = ctx->get_saved_variables()[0];
    at::Tensor x = input.detach().requires_grad_(true);
    const at::Tensor outer_state = get_rng_state(x);
    set_rng_state(x, state->rng_state);
    variable_list outs;
    {
      at::AutoGradMode enable(true);
      outs = state->fn(x);
    }
    set_rng_state(x, outer_state);
    // Outputs that reached no loss get zero gradients (materialised by autograd); skip them.
    variable_list roots, grads;
    for (size_t i = 0; i < outs.size(); ++i) {
      if (outs[i].requires_grad()) {
        roots.push_back(outs[i]);
        grads.push_back(grad_outputs[i]);
      }
    }
    if (!roots.empty()) torch::autograd::backward(roots, grads);
    return {x.grad(), at::Tensor()};
  }
};

}  // namespace

std::vector<at::Tensor> checkpoint(CheckpointFn fn, const at::Tensor& input) {
  DTUNE_CHECK(input.requires_grad(), "checkpoint: the input must require grad");
  auto state = c10::make_intrusive<CheckpointState>();
  state->fn = std::move(fn);
  return CheckpointFunction::apply(input, std::move(state));
}

}  // namespace dtune
