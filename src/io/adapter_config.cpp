// adapter_config.json: parse (validated) and write; see adapter_config.h.
#include "dtune/io/adapter_config.h"

#include <algorithm>

#include "dtune/core/error.h"
#include "json_file.h"

namespace dtune {

using nlohmann::json;

AdapterConfig parse_adapter_config(const json& j, const std::string& cfg_file) {
  DTUNE_CHECK(j.is_object(), cfg_file, ": expected a JSON object");
  AdapterConfig c;
  const std::string peft_type = io_detail::require_string(j, "peft_type", cfg_file);
  DTUNE_CHECK(peft_type == "LORA", cfg_file, ": peft_type \"", peft_type, "\" is not supported (only LORA)");
  c.r = io_detail::require_int(j, "r", cfg_file);
  DTUNE_CHECK(c.r > 0, cfg_file, ": \"r\" must be positive, got ", c.r);
  c.alpha = io_detail::get_double(j, "lora_alpha", 8.0, cfg_file);  // peft's default lora_alpha
  c.dropout = io_detail::get_double(j, "lora_dropout", 0.0, cfg_file);
  c.use_rslora = io_detail::get_bool(j, "use_rslora", false, cfg_file);
  c.base_model_name_or_path = io_detail::get_string(j, "base_model_name_or_path", "", cfg_file);
  const std::string bias = io_detail::get_string(j, "bias", "none", cfg_file);
  DTUNE_CHECK(bias == "none", cfg_file, ": bias \"", bias, "\" is not supported (dtune trains LoRA with bias=\"none\")");
  DTUNE_CHECK(!io_detail::get_bool(j, "use_dora", false, cfg_file), cfg_file, ": use_dora=true is not supported");
  DTUNE_CHECK(!io_detail::get_bool(j, "lora_bias", false, cfg_file), cfg_file, ": lora_bias=true is not supported");
  DTUNE_CHECK(!io_detail::get_bool(j, "fan_in_fan_out", false, cfg_file), cfg_file,
              ": fan_in_fan_out=true is not supported (Llama/Qwen2 use nn.Linear)");
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    DTUNE_CHECK(!j.contains(key) || j.at(key).is_null() || j.at(key).empty(), cfg_file, ": \"", key,
                "\" (per-module rank/alpha) is not supported; every module must use r and lora_alpha");
  }
  DTUNE_CHECK(!j.contains("modules_to_save") || j.at("modules_to_save").is_null() || j.at("modules_to_save").empty(),
              cfg_file, ": \"modules_to_save\" is not supported (dtune adapters hold LoRA weights only)");
  // target_modules: a list, or a regex string (then the caller takes them from the tensor names).
  if (j.contains("target_modules") && j.at("target_modules").is_array()) {
    for (const json& m : j.at("target_modules")) {
      DTUNE_CHECK(m.is_string(), cfg_file, ": target_modules must be a list of strings");
      c.target_modules.push_back(m.get<std::string>());
    }
    std::sort(c.target_modules.begin(), c.target_modules.end());
  }
  return c;
}

json adapter_config_json(const AdapterConfig& config) {
  // Only keys peft 0.6's LoraConfig accepts: older versions fail on unknown keys.
  json j = json::object();
  j["base_model_name_or_path"] = config.base_model_name_or_path.empty() ? json(nullptr)
                                                                        : json(config.base_model_name_or_path);
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["lora_alpha"] = config.alpha;
  j["lora_dropout"] = config.dropout;
  j["modules_to_save"] = nullptr;
  j["peft_type"] = "LORA";
  j["r"] = config.r;
  j["target_modules"] = config.target_modules;
  j["task_type"] = "CAUSAL_LM";
  if (config.use_rslora) j["use_rslora"] = true;  // peft >= 0.7 only; rsLoRA needs it anyway
  return j;
}

}  // namespace dtune
