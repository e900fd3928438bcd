// RMSNorm as HF LlamaRMSNorm / Qwen2RMSNorm: fp32 statistics, cast back, scale (fused on CPU:
// cpu_rms_norm.h).
#include <ATen/ATen.h>

#include "dtune/model/cpu_rms_norm.h"
#include "dtune/model/layers.h"

namespace dtune {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (cpu_rms_norm_applies(x, weight)) return cpu_rms_norm(x, weight, eps);  // one fused pass on CPU
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (xf * at::rsqrt(variance + eps)).to(x.scalar_type());
}

}  // namespace dtune
