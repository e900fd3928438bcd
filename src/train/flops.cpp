// Training FLOPs for MFU; see include/dtune/train/flops.h.
#include "dtune/train/flops.h"

#include "dtune/data/batcher.h"
#include "dtune/io/model_config.h"

namespace dtune {

int64_t matmul_parameters(const ModelConfig& c, int64_t n_params) {
  return c.tie_word_embeddings ? n_params : n_params - c.vocab_size * c.hidden_size;
}

double training_flops(const Batch& batch, const ModelConfig& c, int64_t n_params) {
  const double attn_width = static_cast<double>(c.num_attention_heads * c.head_dim);
  const double per_token = 4.0 * static_cast<double>(n_params);
  const double per_square = 6.0 * static_cast<double>(c.num_hidden_layers) * attn_width;
  double flops = 0;
  for (int64_t b = 0; b < batch.batch_size; ++b) {
    const int32_t* ids = batch.sequence_ids.data() + b * batch.seq_len;
    int64_t run = 0;
    for (int64_t t = 0; t <= batch.seq_len; ++t) {
      const bool same = t < batch.seq_len && t > 0 && ids[t] == ids[t - 1];
      if (t > 0 && !same && ids[t - 1] >= 0) {  // a row ended at t - 1
        const double n = static_cast<double>(run);
        flops += per_token * n + per_square * n * n;
      }
      run = same ? run + 1 : 1;
    }
  }
  return flops;
}

}  // namespace dtune
