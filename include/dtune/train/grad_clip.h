// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <ATen/core/Tensor.h>

namespace dtune {

// Scales grads in place by max_norm / (norm + 1e-6) when that is below 1, where norm is the
// L2 norm of grads already computed by the caller (one reduction serves the non-finite check
// too); torch.nn.utils.clip_grad_norm_'s formula. max_norm <= 0: no clipping. Returns the
// factor applied (1 when none). grads: any shape, fp32.
double clip_grad_norm(at::Tensor& grads, double norm, double max_norm);

}  // namespace dtune
