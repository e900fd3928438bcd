// SwiGLU MLP (Llama/Qwen2): down_proj(silu(gate_proj(x)) * up_proj(x)).
#include <ATen/ATen.h>

#include "dtune/model/layers.h"

namespace dtune {

at::Tensor Mlp::gated(const at::Tensor& x, bool training) const {
  return at::silu(gate_proj.forward(x, training)) * up_proj.forward(x, training);
}

at::Tensor Mlp::forward(const at::Tensor& x, bool training) const {
  return down_proj.forward(gated(x, training), training);
}

}  // namespace dtune
