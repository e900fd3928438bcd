// One pre-norm Llama/Qwen2 decoder layer: attention and MLP blocks with residuals.
#include <ATen/ATen.h>

#include "dtune/model/layers.h"

namespace dtune {

at::Tensor DecoderLayer::forward(const at::Tensor& h, const AttentionInputs& in) const {
  auto [a, m] = forward_to_down_proj(h, in);
  return a + mlp.down_proj.forward(m, in.training);
}

std::pair<at::Tensor, at::Tensor> DecoderLayer::forward_to_down_proj(const at::Tensor& h,
                                                                     const AttentionInputs& in) const {
  at::Tensor a = h + attention.forward(rms_norm(h, input_norm, eps, in.kernels), in);
  at::Tensor m = mlp.gated(rms_norm(a, post_attention_norm, eps, in.kernels), in.training, in.kernels);
  return {std::move(a), std::move(m)};
}

}  // namespace dtune
