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
  std::vector<std::string> target_modules{"q_proj", "v_proj"};  // any of lora_target_names(), each once
  bool use_rslora = false;                                      // scale = alpha / sqrt(r) instead of alpha / r

  double scale() const { return lora_scale(alpha, r, use_rslora); }

  // r, alpha, dropout, target_modules, use_rslora with their help, in this order.
  static const std::vector<OptionField<LoraOptions>>& fields();
};

// Throws dtune::Error naming the first bad field as names spells it ("option lora.r must be > 0,
// got 0"): r <= 0, alpha <= 0, dropout outside [0, 1), no target, an unknown or a repeated target.
void validate(const LoraOptions& options, const OptionNames& names);

}  // namespace dtune
