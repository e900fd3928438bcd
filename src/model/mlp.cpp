// SwiGLU MLP (Llama/Qwen2): down_proj(silu(gate_proj(x)) * up_proj(x)).
#include <ATen/ATen.h>

#include "dtune/model/cpu_swiglu.h"
#include "dtune/model/layers.h"

namespace dtune {

at::Tensor Mlp::gated(const at::Tensor& x, bool training) const {
  const at::Tensor gate = gate_proj.forward(x, training), up = up_proj.forward(x, training);
  if (cpu_swiglu_applies(gate, up)) return cpu_swiglu(gate, up);  // one fused pass on CPU
  return at::silu(gate) * up;
}

at::Tensor Mlp::forward(const at::Tensor& x, bool training) const {
  return down_proj.forward(gated(x, training), training);
}

}  // namespace dtune
