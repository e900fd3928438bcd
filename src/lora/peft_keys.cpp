// The PEFT key scheme of LoRA tensors (see peft_keys.h).
#include "dtune/lora/peft_keys.h"

#include <cstring>

namespace dtune {

std::string peft_lora_key(const std::string& module, LoraMatrix matrix) {
  return kPeftPrefix + module + (matrix == LoraMatrix::kA ? ".lora_A.weight" : ".lora_B.weight");
}

std::optional<PeftLoraKey> parse_peft_lora_key(const std::string& key) {
  const std::string prefix = kPeftPrefix;
  if (key.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  for (const auto& [part, matrix] : {std::pair{".lora_A.", LoraMatrix::kA}, std::pair{".lora_B.", LoraMatrix::kB}}) {
    const size_t at = key.rfind(part);
    if (at == std::string::npos || at <= prefix.size()) continue;
    // What follows must be "weight" or "<adapter name>.weight".
    const std::string rest = key.substr(at + std::strlen(part));
    const size_t dot = rest.find('.');
    const bool plain = rest == "weight";
    const bool named = dot != std::string::npos && dot > 0 && rest.compare(dot, std::string::npos, ".weight") == 0;
    if (!plain && !named) continue;
    return PeftLoraKey{key.substr(prefix.size(), at - prefix.size()), matrix};
  }
  return std::nullopt;
}

std::string base_weight_name(const std::string& lora_name) {
  const std::optional<PeftLoraKey> k = parse_peft_lora_key(lora_name);
  return k ? k->module + ".weight" : "";
}

}  // namespace dtune
