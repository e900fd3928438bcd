// The PEFT key scheme of LoRA tensors in a causal LM, the one place dtune spells it:
//   base_model.model.<module>.lora_A.weight   (r, in_features)
//   base_model.model.<module>.lora_B.weight   (out_features, r)
// where <module> is the HF module path ("model.layers.0.self_attn.q_proj"). peft's
// get_peft_model_state_dict writes these names; an in-memory state_dict (and some older saves)
// carry the adapter name as well ("lora_A.default.weight"), which parse_peft_lora_key accepts.
#pragma once

#include <optional>
#include <string>

namespace dtune {

// PEFT's key prefix for a LoRA-wrapped causal LM: "base_model.model." + module path.
constexpr const char* kPeftPrefix = "base_model.model.";

enum class LoraMatrix { kA, kB };

// "base_model.model.<module>.lora_A.weight" (kA) or ".lora_B.weight" (kB).
std::string peft_lora_key(const std::string& module, LoraMatrix matrix);

struct PeftLoraKey {
  std::string module;  // "model.layers.0.self_attn.q_proj"
  LoraMatrix matrix = LoraMatrix::kA;
};

// The module and matrix of a saved LoRA tensor name, with or without the adapter name
// ("...q_proj.lora_A.default.weight"); nullopt for any other name (embedding LoRA, DoRA
// magnitudes, biases, names without the prefix).
std::optional<PeftLoraKey> parse_peft_lora_key(const std::string& key);

// "base_model.model.X.lora_A.weight" -> "X.weight" (the base weight it updates); "" when the name
// is not a LoRA tensor name.
std::string base_weight_name(const std::string& lora_name);

}  // namespace dtune
