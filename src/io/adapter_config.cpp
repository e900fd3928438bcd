// adapter_config.json: read and checked (see adapter_config.h).
#include "dtune/io/adapter_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include "dtune/core/error.h"
#include "json_file.h"

namespace dtune {

namespace {

AdapterPattern read_pattern(const nlohmann::ordered_json& j, const char* key, const std::string& file) {
  AdapterPattern out;
  if (!j.contains(key) || j.at(key).is_null()) return out;
  DTUNE_CHECK(j.at(key).is_object(), file, ": \"", key, "\" must be an object {module pattern: value}");
  for (const auto& [k, v] : j.at(key).items()) {
    DTUNE_CHECK(v.is_number(), file, ": ", key, "[\"", k, "\"] must be a number");
    out.emplace_back(k, v.get<double>());
  }
  return out;
}

}  // namespace

AdapterConfigFile read_adapter_config(const std::string& file) {
  const nlohmann::json j = io_detail::read_json_file(file);
  DTUNE_CHECK(j.is_object(), file, ": expected a JSON object");

  AdapterConfigFile out;
  AdapterConfig& c = out.config;
  const std::string peft_type = io_detail::require_string(j, "peft_type", file);
  DTUNE_CHECK(peft_type == "LORA", file, ": peft_type \"", peft_type, "\" is not supported (only LORA)");
  c.r = io_detail::require_int(j, "r", file);
  DTUNE_CHECK(c.r > 0, file, ": \"r\" must be positive, got ", c.r);
  c.alpha = io_detail::get_double(j, "lora_alpha", 8.0, file);  // peft's default lora_alpha
  c.dropout = io_detail::get_double(j, "lora_dropout", 0.0, file);
  c.use_rslora = io_detail::get_bool(j, "use_rslora", false, file);
  c.base_model_name_or_path = io_detail::get_string(j, "base_model_name_or_path", "", file);
  c.target_modules.clear();
  if (const auto it = j.find("layers_to_transform"); it != j.end() && !it->is_null()) {
    const bool ok = it->is_number_integer() || (it->is_array() && std::all_of(it->begin(), it->end(), [](const auto& v) {
                                                  return v.is_number_integer();
                                                }));
    DTUNE_CHECK(ok, file, ": \"layers_to_transform\" must be an integer or a list of integers, got ", it->dump());
    c.layers_to_transform = it->is_array() ? it->template get<std::vector<int64_t>>()
                                           : std::vector<int64_t>{it->template get<int64_t>()};
  }
  if (const auto it = j.find("layers_pattern"); it != j.end() && !it->is_null()) {
    const bool ok = it->is_string() || (it->is_array() && std::all_of(it->begin(), it->end(), [](const auto& v) {
                                          return v.is_string();
                                        }));
    DTUNE_CHECK(ok, file, ": \"layers_pattern\" must be a string or a list of strings, got ", it->dump());
    c.layers_pattern = it->is_array() ? it->template get<std::vector<std::string>>()
                                      : std::vector<std::string>{it->template get<std::string>()};
  }
  const std::string bias = io_detail::get_string(j, "bias", "none", file);
  DTUNE_CHECK(bias == "none", file, ": bias \"", bias, "\" is not supported (dtune trains LoRA with bias=\"none\")");
  DTUNE_CHECK(!io_detail::get_bool(j, "use_dora", false, file), file, ": use_dora=true is not supported");
  DTUNE_CHECK(!io_detail::get_bool(j, "lora_bias", false, file), file, ": lora_bias=true is not supported");
  DTUNE_CHECK(!io_detail::get_bool(j, "fan_in_fan_out", false, file), file,
              ": fan_in_fan_out=true is not supported (Llama/Qwen2 use nn.Linear)");
  for (const auto& [key, why] : {std::pair{"modules_to_save", "dtune adapters hold LoRA weights only: fully trained "
                                               "modules are not applied"},
                                   std::pair{"trainable_token_indices", "trainable token embeddings are not applied"},
                                   std::pair{"layer_replication", "dtune does not replicate layers"},
                                   std::pair{"target_parameters", "LoRA on parameters (not modules) is not applied"}}) {
    DTUNE_CHECK(!j.contains(key) || j.at(key).is_null() || j.at(key).empty(), file, ": \"", key,
                "\" is not supported (", why, "); merge it with peft (merge_and_unload) or re-train without it");
  }
  // Per-module rank and alpha (peft's rank_pattern / alpha_pattern), keys in file order: the
  // file once more as an ordered object (nlohmann::json sorts keys).
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  const nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  DTUNE_CHECK(!ordered.is_discarded() && ordered.is_object(), file, ": changed while it was read; read it again");
  out.rank_pattern = read_pattern(ordered, "rank_pattern", file);
  out.alpha_pattern = read_pattern(ordered, "alpha_pattern", file);
  return out;
}

double adapter_pattern_value(const AdapterPattern& pattern, const std::string& module, double fallback,
                             const std::string& file) {
  for (const auto& [key, value] : pattern) {
    try {
      if (std::regex_match(module, std::regex("(.*\\.)?(" + key + ")"))) return value;
    } catch (const std::regex_error& e) {
      throw Error(str(file, ": pattern \"", key, "\" is not a regular expression dtune can read (", e.what(), ")"));
    }
  }
  return fallback;
}

ModuleRankAlpha module_rank_alpha(const AdapterConfigFile& adapter, const std::string& module, const std::string& file) {
  const AdapterConfig& c = adapter.config;
  const double r = adapter_pattern_value(adapter.rank_pattern, module, static_cast<double>(c.r), file);
  DTUNE_CHECK(r >= 1 && r < 2147483648.0 && r == std::floor(r), file, ": rank_pattern gives ", module, " the rank ", r,
              "; a rank must be a positive integer");
  ModuleRankAlpha out;
  out.r = static_cast<int64_t>(r);
  out.alpha = adapter_pattern_value(adapter.alpha_pattern, module, c.alpha, file);
  DTUNE_CHECK(std::isfinite(out.alpha), file, ": alpha_pattern gives ", module, " the alpha ", out.alpha,
              "; it must be a finite number");
  out.r_from_pattern = out.r != c.r;
  return out;
}

}  // namespace dtune
