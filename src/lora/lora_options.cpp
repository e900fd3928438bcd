// LoraOptions: fields, validation and the LoRA scale (see lora_options.h).
#include "dtune/lora/lora_options.h"

#include <algorithm>
#include <cmath>
#include <regex>
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

namespace {

constexpr const char* kAllLinear = "all-linear";

bool is_target_name(const std::string& s) {
  const auto& names = lora_target_names();
  return std::find(names.begin(), names.end(), s) != names.end();
}

}  // namespace

bool LoraOptions::targets_by_pattern() const {
  return target_modules.size() == 1 && !is_target_name(target_modules[0]);
}

bool LoraOptions::targets(const std::string& module_path) const {
  if (targets_by_pattern()) {
    const std::string& t = target_modules[0];
    if (t == kAllLinear) return true;  // every projection is a linear layer; the LM head is not one of them
    try {
      return std::regex_match(module_path, std::regex(t));
    } catch (const std::regex_error& e) {
      throw Error(str("lora.target_modules \"", t, "\" is not a regular expression dtune can read (", e.what(), ")"));
    }
  }
  for (const std::string& name : target_modules)
    if (module_path == name || (module_path.size() > name.size() &&
                                module_path.compare(module_path.size() - name.size(), name.size(), name) == 0 &&
                                module_path[module_path.size() - name.size() - 1] == '.'))
      return true;
  return false;
}

const std::vector<OptionField<LoraOptions>>& LoraOptions::fields() {
  static const std::vector<OptionField<LoraOptions>> fields = {
      DTUNE_OPTION_FIELD(LoraOptions, "r", r, "LoRA rank"),
      DTUNE_OPTION_FIELD(LoraOptions, "alpha", alpha, "LoRA alpha; scale = alpha / r (alpha / sqrt(r) with use_rslora)"),
      DTUNE_OPTION_FIELD(LoraOptions, "dropout", dropout, "dropout on the adapter input, in [0, 1)"),
      DTUNE_OPTION_FIELD(LoraOptions, "target_modules", target_modules,
                         "comma list of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj; or all-linear; or "
                         "one regex matching whole module paths (as peft's LoraConfig)"),
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
  if (o.targets_by_pattern()) {
    const std::string& t = target_modules[0];
    if (t == kAllLinear) return;
    try {
      std::regex check(t);
    } catch (const std::regex_error& e) {
      throw Error(str("option ", names("target_modules"), ": '", t, "' is neither a module name (",
                      "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj), all-linear, nor a regular expression (",
                      e.what(), ")"));
    }
    const bool pattern = t.find_first_of(".*+?[]()|^$\\{}") != std::string::npos;
    require_option(pattern, names("target_modules"), "'" + t + "'",
                   "must list q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, be all-linear, or be a "
                   "regular expression over module paths (e.g. .*\\.(q_proj|v_proj))");
    return;
  }
  std::set<std::string> seen;
  for (const std::string& m : target_modules) {
    if (!is_target_name(m))
      throw Error(str("option ", names("target_modules"), ": unknown module '", m,
                      "' (allowed: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)"));
    if (!seen.insert(m).second)
      throw Error(str("option ", names("target_modules"), ": '", m, "' is listed twice"));
  }
}

}  // namespace dtune
