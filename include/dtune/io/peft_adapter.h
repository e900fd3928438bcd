// PEFT LoRA adapters on disk: adapter_config.json + adapter_model.safetensors, the format that
// peft's PeftModel.from_pretrained / save_pretrained read and write.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <c10/core/Device.h>

namespace at {
class Tensor;
}

namespace dtune {

struct AdapterConfig {
  int64_t r = 0;                            // LoRA rank
  double alpha = 0;                         // lora_alpha; scale = alpha / r (alpha / sqrt(r) with rsLoRA)
  double dropout = 0;                       // lora_dropout (training only)
  std::vector<std::string> target_modules;  // e.g. {"q_proj", "v_proj"}
  bool use_rslora = false;                  // rank-stabilized scaling
  std::string base_model_name_or_path;      // informational; may be empty
};

// Tensor names as PEFT saves them, e.g.
//   base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight   (r, in_features)
//   base_model.model.model.layers.{i}.self_attn.q_proj.lora_B.weight   (out_features, r)
struct PeftAdapter {
  AdapterConfig config;
  std::vector<std::pair<std::string, at::Tensor>> tensors;  // fp32, on the requested device
};

// Writes dir/adapter_config.json and dir/adapter_model.safetensors (fp32, these tensors only)
// into a staging folder renamed to dir when complete. The config holds only keys that peft
// 0.6+ accepts; "use_rslora" (peft >= 0.7) is written only when true. Throws dtune::Error for
// names that are not lora_A/lora_B weights or shapes inconsistent with config.r.
void save_peft_adapter(const std::string& dir, const AdapterConfig& config,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors);

// Reads a PEFT LoRA adapter folder. Accepts names with or without the adapter name
// (".lora_A.default.weight") and normalizes them to the form above; tensors are ordered by
// name with layer numbers compared numerically. Rejects what dtune cannot apply (DoRA, biases,
// modules_to_save, rank/alpha patterns, embedding LoRA) with an Error naming the file and key.
PeftAdapter load_peft_adapter(const std::string& dir, c10::Device device);

// The weight update of one LoRA pair: scale * B @ A in fp32, shape (out_features, in_features).
at::Tensor lora_delta(const at::Tensor& A, const at::Tensor& B, const AdapterConfig& config);

// "base_model.model.X.lora_A.weight" -> "X.weight" (the base weight it updates); "" when the name
// is not a normalized LoRA tensor name.
std::string base_weight_name(const std::string& lora_name);

// Sorts names so that "layers.2." comes before "layers.10." (digit runs compare as numbers).
bool natural_less(const std::string& a, const std::string& b);

}  // namespace dtune
