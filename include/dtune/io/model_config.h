// A Hugging Face config.json for the decoder families dtune trains: Llama and Qwen2.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dtune/io/generation_config.h"

namespace dtune {

// rope_scaling / rope_parameters. type "default" = plain RoPE; "llama3" = Llama 3.1 scaling.
struct RopeScaling {
  std::string type = "default";
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type;          // "llama" | "qwen2"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // GQA; = num_attention_heads when absent
  int64_t head_dim = 0;             // = hidden_size / num_attention_heads when absent
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool attention_bias = false;      // q/k/v (and o for llama's flag) biases; Qwen2: q/k/v only
  bool mlp_bias = false;
  bool tie_word_embeddings = false;
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;  // config.json + generation_config.json, deduplicated
  std::optional<int32_t> pad_token_id;
  std::string torch_dtype;          // as saved ("bfloat16", ...), informational
  GenerationConfig generation;      // generation_config.json's knobs (all unset without the file)
};

// Reads model_dir/config.json (and generation_config.json: extra EOS ids, the generation knobs). Throws
// dtune::Error naming the file and key for missing/invalid fields or unsupported model types.
ModelConfig load_model_config(const std::string& model_dir);

}  // namespace dtune
