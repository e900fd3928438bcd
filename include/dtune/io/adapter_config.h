// adapter_config.json of a PEFT LoRA adapter folder, as dtune reads it: the LoRA
// hyper-parameters, the per-module rank and alpha patterns, and the refusals of what dtune cannot
// apply. libtorch-free (the libFuzzer harness tools/fuzz_adapter_config runs it alone); the
// folder loader load_peft_adapter (peft_adapter.h) reads the file here.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dtune/lora/lora_options.h"

namespace dtune {

// adapter_config.json as dtune reads and writes it: the LoRA hyper-parameters (LoraOptions, the
// one definition: r, alpha = lora_alpha, dropout = lora_dropout, target_modules, use_rslora) and
// the base model's name. The scale is LoraOptions::scale().
struct AdapterConfig : LoraOptions {
  std::string base_model_name_or_path;  // informational; may be empty
  // peft's layers_to_transform / layers_pattern as the adapter folder gave them (an int or a
  // string is a one-element list); empty = every layer. Written back by save_peft_adapter so
  // that an adapter trained on from one (lora.init_adapter) names the same layers.
  std::vector<int64_t> layers_to_transform;
  std::vector<std::string> layers_pattern;
};

// peft's rank_pattern / alpha_pattern in file order: {module regex, value}.
using AdapterPattern = std::vector<std::pair<std::string, double>>;

// What read_adapter_config takes from the file. config.target_modules stays empty: the saved
// tensors say which modules are adapted (load_peft_adapter fills it from them).
struct AdapterConfigFile {
  AdapterConfig config;
  AdapterPattern rank_pattern;
  AdapterPattern alpha_pattern;
};

// Reads and checks the adapter_config.json at `file`: peft_type LORA, r > 0 (int), lora_alpha
// (default 8, peft's), lora_dropout (default 0), use_rslora, base_model_name_or_path,
// layers_to_transform (an int or a list of ints) and layers_pattern (a string or a list),
// rank_pattern / alpha_pattern (objects of numbers); refuses, naming the field, bias other than
// "none", use_dora, lora_bias, fan_in_fan_out, modules_to_save, trainable_token_indices,
// layer_replication and target_parameters. Throws dtune::Error naming the file for anything else
// (unreadable file, malformed JSON, wrong types).
AdapterConfigFile read_adapter_config(const std::string& file);

// One module's rank and alpha: rank_pattern / alpha_pattern where a key matches it (as
// adapter_pattern_value), else r / lora_alpha. r_from_pattern: the rank differs from r.
// Throws dtune::Error naming `file` when the rank a pattern gives is not an integer in
// [1, 2^31) or an alpha is not finite.
struct ModuleRankAlpha {
  int64_t r = 0;
  double alpha = 0;
  bool r_from_pattern = false;
};
ModuleRankAlpha module_rank_alpha(const AdapterConfigFile& adapter, const std::string& module, const std::string& file);

// peft's get_pattern_key: the value of the first pattern key (in file order) with
// re.match(rf"(.*\.)?({key})$", module); none matches: fallback. Throws dtune::Error naming
// `file` for a key that is not a regular expression std::regex reads.
double adapter_pattern_value(const AdapterPattern& pattern, const std::string& module, double fallback,
                             const std::string& file);

}  // namespace dtune
