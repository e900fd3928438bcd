// RMSNorm as HF LlamaRMSNorm / Qwen2RMSNorm: fp32 statistics, cast back, scale (on CPU dtune's
// fused cpu_rms_norm.h where kernel_choice.h picks it).
#include <ATen/ATen.h>

#include "dtune/kernels/cpu_rms_norm.h"
#include "dtune/kernels/kernel_choice.h"
#include "dtune/model/layers.h"

namespace dtune {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, KernelPolicy kernels) {
  if (use_cpu_rms_norm(kernels, x, weight)) return cpu_rms_norm(x, weight, eps);  // one fused pass on CPU
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (xf * at::rsqrt(variance + eps)).to(x.scalar_type());
}

}  // namespace dtune
