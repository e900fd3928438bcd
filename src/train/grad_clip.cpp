// Gradient clipping; see include/dtune/train/grad_clip.h.
#include "dtune/train/grad_clip.h"

#include <ATen/ATen.h>

namespace dtune {

double clip_grad_norm(at::Tensor& grads, double norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return 1.0;
  grads.mul_(coef);
  return coef;
}

}  // namespace dtune
