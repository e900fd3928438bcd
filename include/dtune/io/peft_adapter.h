// PEFT LoRA adapters on disk: adapter_config.json + adapter_model.safetensors, the format that
// peft's PeftModel.from_pretrained / save_pretrained read and write.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <c10/core/Device.h>

#include "dtune/io/adapter_config.h"  // AdapterConfig, read_adapter_config
#include "dtune/lora/lora_adapter.h"  // LoraModuleWeights, lora_delta
#include "dtune/lora/lora_options.h"
#include "dtune/lora/peft_keys.h"     // the key scheme, base_weight_name

namespace dtune {

// A PEFT adapter folder read into one description: its config, its tensors under normalized
// PEFT key names (lora/peft_keys.h), e.g.
//   base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight   (r, in_features)
//   base_model.model.model.layers.{i}.self_attn.q_proj.lora_B.weight   (out_features, r)
// and the same tensors per module with each module's scale (modules, in the tensors' order),
// which generate (lora/ attach_lora_weights), merge and train all apply.
struct PeftAdapter {
  AdapterConfig config;
  std::vector<std::pair<std::string, at::Tensor>> tensors;  // fp32, on the requested device
  std::vector<LoraModuleWeights> modules;                   // the same tensors, one entry a module
};

// Writes dir/adapter_config.json and dir/adapter_model.safetensors (fp32, these tensors only)
// into a staging folder renamed to dir when complete; with tokenizer_source (a model folder or
// a tokenizer.json), also its tokenizer files (copy_tokenizer_files), as Trainer.save_model
// does, so AutoTokenizer.from_pretrained(dir) works. The config holds only keys that peft 0.6+
// accepts; "use_rslora" (peft >= 0.7) is written only when true, layers_to_transform and
// layers_pattern only when set. Throws dtune::Error for names that are not lora_A/lora_B
// weights or shapes inconsistent with config.r.
void save_peft_adapter(const std::string& dir, const AdapterConfig& config,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::string& tokenizer_source = "");

// THE adapter loader (dtune generate --adapter, dtune merge, lora.init_adapter and resume all
// read adapters here). Accepts what peft writes: names with or without the adapter name
// (".lora_A.default.weight", normalized to the form above; tensors ordered by name with layer
// numbers compared numerically); target_modules as a list, a regex or "all-linear" and
// layers_to_transform / layers_pattern (the saved tensors say which modules are adapted;
// config.target_modules becomes their sorted short names); rank_pattern / alpha_pattern (each
// module's rank and alpha as peft's get_pattern_key picks them, so modules[i].scale is per
// module) and use_rslora. Refuses, naming the field, what dtune cannot apply: DoRA, lora_bias,
// bias other than "none", fan_in_fan_out, modules_to_save, trainable_token_indices,
// layer_replication, target_parameters, embedding LoRA, non-LORA peft types.
PeftAdapter load_peft_adapter(const std::string& dir, c10::Device device);

// For training on from a loaded adapter (lora.init_adapter): its r, alpha, use_rslora and adapted
// projections must be what the config says, since the run saves its adapter with the config's
// values. Throws dtune::Error naming the option as names spells it and both values ("option
// lora.r is 8 but the adapter DIR has r = 4: set lora.r = 4"), or when the adapter has per-module
// ranks or alphas (rank_pattern / alpha_pattern), which a trained adapter cannot keep.
void check_adapter_matches(const LoraOptions& options, const OptionNames& names, const PeftAdapter& adapter,
                           const std::string& adapter_dir);

// Sorts names so that "layers.2." comes before "layers.10." (digit runs compare as numbers).
bool natural_less(const std::string& a, const std::string& b);

}  // namespace dtune
