// LoraOptions: fields, validation and the LoRA scale (see lora_options.h).
#include "dtune/lora/lora_options.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "dtune/core/error.h"

namespace dtune {

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  return names;
}

double lora_scale(double alpha, int64_t r, bool use_rslora) {
  DTUNE_CHECK(r > 0, "LoRA rank must be > 0, got ", r);
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

const std::vector<OptionField<LoraOptions>>& LoraOptions::fields() {
  static const std::vector<OptionField<LoraOptions>> fields = {
      DTUNE_OPTION_FIELD(LoraOptions, "r", r, "LoRA rank"),
      DTUNE_OPTION_FIELD(LoraOptions, "alpha", alpha, "LoRA alpha; scale = alpha / r (alpha / sqrt(r) with use_rslora)"),
      DTUNE_OPTION_FIELD(LoraOptions, "dropout", dropout, "dropout on the adapter input, in [0, 1)"),
      DTUNE_OPTION_FIELD(LoraOptions, "target_modules", target_modules,
                         "comma list of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"),
      DTUNE_OPTION_FIELD(LoraOptions, "use_rslora", use_rslora, "rank-stabilised scale alpha / sqrt(r)"),
  };
  return fields;
}

void validate(const LoraOptions& o, const OptionNames& names) {
  const auto& [r, alpha, dropout, target_modules, use_rslora] = o;
  (void)use_rslora;
  require_option(r > 0, names("r"), r, "must be > 0");
  require_option(alpha > 0, names("alpha"), alpha, "must be > 0");
  require_option(dropout >= 0 && dropout < 1, names("dropout"), dropout, "must be in [0, 1)");
  require_option(!target_modules.empty(), names("target_modules"), "''", "must list at least one module");
  const std::vector<std::string>& known = lora_target_names();
  std::set<std::string> seen;
  for (const std::string& m : target_modules) {
    if (std::find(known.begin(), known.end(), m) == known.end())
      throw Error(str("option ", names("target_modules"), ": unknown module '", m,
                      "' (allowed: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)"));
    if (!seen.insert(m).second)
      throw Error(str("option ", names("target_modules"), ": '", m, "' is listed twice"));
  }
}

}  // namespace dtune
