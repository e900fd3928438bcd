// The LoRA hyper-parameters: the one definition of lora.r, lora.alpha, lora.dropout,
// lora.target_modules and lora.use_rslora (defaults, help, validation), and of the LoRA scale.
// The [lora] config section embeds it (config.h); a PEFT adapter_config.json is read into it
// (io/peft_adapter.h). No libtorch: the config links it (library dtune_lora_options).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtune/core/option_field.h"

namespace dtune {

// The projections dtune can adapt, in model order (HF module names of Llama / Qwen2 layers).
const std::vector<std::string>& lora_target_names();

// The factor of the update W + scale * B @ A: alpha / r, or alpha / sqrt(r) with rank-stabilised
// LoRA (peft's LoraLayer.update_layer: scaling = lora_alpha / r, or / math.sqrt(r) with
// use_rslora). r > 0.
double lora_scale(double alpha, int64_t r, bool use_rslora);

// Defaults are the recipe's (peft LoraConfig(r=4, lora_alpha=16, lora_dropout=0.1,
// target_modules=["q_proj", "v_proj"])).
struct LoraOptions {
  int64_t r = 4;                                                // adapter rank, > 0
  double alpha = 16.0;                                          // lora_alpha; see scale()
  double dropout = 0.1;                                         // dropout on the adapter input (training only), [0, 1)
  // As peft's LoraConfig.target_modules: names from lora_target_names() (each once; a module is
  // targeted when its path ends in ".<name>"), or one entry "all-linear" (every projection; the
  // LM head never), or one regular expression that must match a whole module path
  // ("model.layers.0.self_attn.q_proj"; ECMAScript syntax, no commas in a config value).
  std::vector<std::string> target_modules{"q_proj", "v_proj"};
  bool use_rslora = false;                                      // scale = alpha / sqrt(r) instead of alpha / r

  double scale() const { return lora_scale(alpha, r, use_rslora); }

  // Whether target_modules selects this projection, by its HF module path (peft's
  // check_target_module_exists: list -> path == name or ends in ".name"; "all-linear"; a regex
  // string -> re.fullmatch). Throws dtune::Error for a regex std::regex cannot read.
  bool targets(const std::string& module_path) const;
  // True when target_modules is one "all-linear" or regex entry (written to adapter_config.json
  // as a string, as peft writes it), false for a list of names.
  bool targets_by_pattern() const;

  // r, alpha, dropout, target_modules, use_rslora with their help, in this order.
  static const std::vector<OptionField<LoraOptions>>& fields();
};

// Throws dtune::Error naming the first bad field as names spells it ("option lora.r must be > 0,
// got 0"): r <= 0, alpha <= 0, dropout outside [0, 1), no target, an unknown or a repeated target.
void validate(const LoraOptions& options, const OptionNames& names);

}  // namespace dtune
