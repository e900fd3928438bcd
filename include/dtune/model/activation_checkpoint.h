// Activation checkpointing: run a block without keeping its intermediate activations and
// recompute it during backward (PyTorch's reentrant torch.utils.checkpoint, in C++).
#pragma once

#include <functional>
#include <vector>

#include <ATen/core/Tensor.h>

namespace dtune {

// The block: input -> its outputs (one or more).
using CheckpointFn = std::function<std::vector<at::Tensor>(const at::Tensor&)>;

// Returns fn(input), recording one autograd node instead of fn's graph. In backward, fn is run
// again with grad enabled on a detached copy of input and backpropagated from the gradients of
// every output that reached the loss (one backward pass for all of them); gradients of the
// parameters fn closes over (LoRA A/B) accumulate into their .grad, the input's gradient is
// returned to the outer graph.
//
// Dropout replay: the state of the default generator of input's device is saved before the
// forward and restored around the recomputation (then put back), so every dropout mask drawn
// inside fn is identical in both runs and the outer RNG stream is unchanged.
//
// REQUIRES: input.requires_grad() (else backward would never reach this node; the Decoder makes
// the embedding output require grad when checkpointing), fn deterministic given the RNG state,
// and everything fn captures alive until backward. Only call when grad mode is on.
std::vector<at::Tensor> checkpoint(CheckpointFn fn, const at::Tensor& input);

}  // namespace dtune
