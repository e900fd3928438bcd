// SwiGLU MLP (Llama/Qwen2): down_proj(silu(gate_proj(x)) * up_proj(x)).
#include <ATen/ATen.h>

#include "dtune/kernels/cpu_swiglu.h"
#include "dtune/kernels/kernel_choice.h"
#include "dtune/model/layers.h"

namespace dtune {

at::Tensor Mlp::gated(const at::Tensor& x, bool training, KernelPolicy kernels) const {
  const at::Tensor gate = gate_proj.forward(x, training), up = up_proj.forward(x, training);
  if (use_cpu_swiglu(kernels, gate, up)) return cpu_swiglu(gate, up);  // one fused pass on CPU
  return at::silu(gate) * up;
}

at::Tensor Mlp::forward(const at::Tensor& x, bool training, KernelPolicy kernels) const {
  return down_proj.forward(gated(x, training, kernels), training);
}

}  // namespace dtune
