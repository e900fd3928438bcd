// adapter_config.json of a PEFT LoRA adapter: what dtune reads from it (validated: only what
// dtune can apply is accepted) and the JSON it writes (keys peft 0.6+ accepts). No libtorch, so
// that it is fuzzed on its own (tools/fuzz_adapter_config).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dtune {

struct AdapterConfig {
  int64_t r = 0;                            // LoRA rank
  double alpha = 0;                         // lora_alpha; scale = alpha / r (alpha / sqrt(r) with rsLoRA)
  double dropout = 0;                       // lora_dropout (training only)
  std::vector<std::string> target_modules;  // e.g. {"q_proj", "v_proj"}
  bool use_rslora = false;                  // rank-stabilized scaling
  std::string base_model_name_or_path;      // informational; may be empty
};

// Parses adapter_config.json's content, read from `file` (named in every error). Throws
// dtune::Error naming the file and key for: not an object, peft_type other than "LORA", r
// missing or <= 0, wrong types, and what dtune cannot apply (bias other than "none", DoRA,
// lora_bias, fan_in_fan_out, rank_pattern/alpha_pattern, modules_to_save). lora_alpha defaults
// to peft's 8, lora_dropout to 0. target_modules: a list of strings (returned sorted); absent or
// a regex string gives an empty list (the caller takes the modules from the tensor names).
AdapterConfig parse_adapter_config(const nlohmann::json& j, const std::string& file);

// The adapter_config.json object for config, with only the keys peft 0.6's LoraConfig accepts
// ("use_rslora", peft >= 0.7, only when true). parse_adapter_config(adapter_config_json(c))
// gives c back (target_modules sorted).
nlohmann::json adapter_config_json(const AdapterConfig& config);

}  // namespace dtune
