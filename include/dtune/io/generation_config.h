// A model folder's generation_config.json: the generation knobs the model's authors chose. Each
// is unset when the file (or the key) is absent; generate/generate_options.h resolves them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace dtune {

// The keys of transformers' GenerationConfig that dtune's generate() uses (eos_token_id is read
// into ModelConfig::eos_token_ids by load_model_config). JSON null = unset, as in transformers.
struct GenerationConfig {
  std::string file;                          // the path read; "" when the folder has none
  std::optional<bool> do_sample;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> repetition_penalty;
  std::optional<int64_t> max_new_tokens;     // new tokens per prompt
  std::optional<int64_t> max_length;         // prompt + new tokens (used when max_new_tokens is unset)
};

// Reads model_dir/generation_config.json; all unset (file "") when there is none. Throws
// dtune::Error naming the file and key when a value has the wrong JSON type.
GenerationConfig load_generation_config(const std::string& model_dir);

}  // namespace dtune
