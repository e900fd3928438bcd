// The per-GPU memory estimate; see memory_estimate.h for the formulas and their sources.
#include "dtune/train/memory_estimate.h"

#include <algorithm>
#include <cstdio>

#include "dtune/config/config.h"
#include "dtune/core/error.h"
#include "dtune/io/model_config.h"
#include "dtune/model/decoder.h"

namespace dtune {
namespace {

int64_t itemsize_of(const std::string& precision) { return precision == "fp32" ? 4 : 2; }

struct Shapes {
  int64_t embed = 0, layer = 0, head = 0, norm = 0;  // elements per unit
};

Shapes unit_sizes(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  const bool qwen2 = c.model_type == "qwen2";
  const int64_t bias = (qwen2 || c.attention_bias ? q + 2 * kv : 0) + (!qwen2 && c.attention_bias ? H : 0) +
                       (c.mlp_bias ? 2 * I + H : 0);
  Shapes s;
  s.embed = c.vocab_size * H;
  s.layer = 2 * H + H * q + 2 * H * kv + q * H + 3 * H * I + bias;
  s.head = c.tie_word_embeddings ? 0 : c.vocab_size * H;
  s.norm = H;
  return s;
}

}  // namespace

int64_t lora_parameter_count(const ModelConfig& c, const Config& config) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  int64_t per_layer = 0;
  for (const std::string& t : config.lora.target_modules) {
    int64_t in = 0, out = 0;
    if (t == "q_proj") in = H, out = q;
    else if (t == "k_proj" || t == "v_proj") in = H, out = kv;
    else if (t == "o_proj") in = q, out = H;
    else if (t == "gate_proj" || t == "up_proj") in = H, out = I;
    else if (t == "down_proj") in = I, out = H;
    per_layer += config.lora.r * (in + out);
  }
  return per_layer * c.num_hidden_layers;
}

MemoryEstimate estimate_memory(const ModelConfig& c, const Config& config, int64_t world_size, int64_t ranks_per_node,
                               int64_t max_length, int64_t lora_params) {
  const auto& t = config.train;
  const double b = static_cast<double>(itemsize_of(t.precision));
  MemoryEstimate e;
  e.shard_group = t.sharding == "full"     ? world_size
                  : t.sharding == "hybrid" ? (t.data_parallel_shard_degree > 0 ? t.data_parallel_shard_degree
                                                                              : ranks_per_node)
                                           : 1;
  const Shapes s = unit_sizes(c);
  const double all = static_cast<double>(s.embed + s.layer * c.num_hidden_layers + s.norm + s.head) * b;
  const double G = static_cast<double>(e.shard_group);
  e.base = all / G;
  if (e.shard_group > 1) e.gathered = 2.0 * static_cast<double>(std::max({s.layer, s.embed, s.head})) * b;
  e.lora = 5.0 * 4.0 * static_cast<double>(lora_params);
  const double sbh = static_cast<double>(config.data.micro_batch_size) * static_cast<double>(max_length) *
                     static_cast<double>(c.hidden_size);
  // Korthikanti et al. 34 sbh (16-bit): 15 sbh attention block + 19 sbh MLP at intermediate 4h.
  const double mlp_scale = static_cast<double>(c.intermediate_size) / (4.0 * static_cast<double>(c.hidden_size));
  const double full_layer = (15.0 + 19.0 * mlp_scale) * sbh * (b / 2.0);
  const double L = static_cast<double>(c.num_hidden_layers);
  if (t.gradient_checkpointing) {
    const double every = static_cast<double>(t.activation_checkpoint_every);
    e.activations = L * sbh * b + full_layer * every;
  } else {
    e.activations = L * full_layer;
  }
  const double chunk = static_cast<double>(std::min<int64_t>(
      DecoderOptions{}.loss_chunk_size, static_cast<int64_t>(config.data.micro_batch_size) * max_length));
  e.logits = chunk * static_cast<double>(c.vocab_size) * (b + 8.0);
  e.runtime = 2.0 * 1073741824.0;
  return e;
}

std::string format_memory_estimate(const MemoryEstimate& e) {
  constexpr double kGiB = 1073741824.0;
  char buf[640];
  std::snprintf(buf, sizeof buf,
                "  frozen base (1/%lld of it)  %8.2f GiB\n"
                "  gathered units            %8.2f GiB\n"
                "  LoRA + AdamW (fp32)       %8.2f GiB\n"
                "  activations               %8.2f GiB\n"
                "  loss chunk logits         %8.2f GiB\n"
                "  CUDA/NCCL runtime         %8.2f GiB (assumed)\n"
                "  total per GPU             %8.2f GiB\n",
                static_cast<long long>(e.shard_group), e.base / kGiB, e.gathered / kGiB, e.lora / kGiB,
                e.activations / kGiB, e.logits / kGiB, e.runtime / kGiB, e.total() / kGiB);
  return buf;
}

}  // namespace dtune
