// One pre-norm Llama/Qwen2 decoder layer: attention and MLP blocks with residuals.
#include <ATen/ATen.h>

#include "dtune/model/layers.h"

namespace dtune {

at::Tensor DecoderLayer::forward(const at::Tensor& h, const AttentionInputs& in) const {
  const at::Tensor a = h + attention.forward(rms_norm(h, input_norm, eps), in);
  return a + mlp.forward(rms_norm(a, post_attention_norm, eps), in.training);
}

}  // namespace dtune
