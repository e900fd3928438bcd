// RMSNorm as HF LlamaRMSNorm / Qwen2RMSNorm: fp32 statistics, cast back, scale.
#include <ATen/ATen.h>

#include "dtune/model/layers.h"

namespace dtune {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (xf * at::rsqrt(variance + eps)).to(x.scalar_type());
}

}  // namespace dtune
