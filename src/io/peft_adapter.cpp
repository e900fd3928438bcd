// PEFT LoRA adapter folders: save (peft-loadable), load (validated, names normalized), lora_delta.
#include "dtune/io/peft_adapter.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <ATen/core/Tensor.h>
#include <ATen/ops/matmul.h>

#include "dtune/core/error.h"
#include "dtune/io/safetensors.h"
#include "dtune/io/staging_dir.h"
#include "json_file.h"

namespace dtune {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kPrefix = "base_model.model.";
constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "...q_proj.lora_A.default.weight" -> "...q_proj.lora_A.weight"; other names unchanged.
std::string strip_adapter_name(const std::string& name) {
  for (const char* part : {".lora_A.", ".lora_B."}) {
    const size_t at = name.find(part);
    if (at == std::string::npos) continue;
    const size_t rest = at + std::strlen(part);
    const size_t dot = name.find('.', rest);
    if (dot != std::string::npos && name.compare(dot, std::string::npos, ".weight") == 0) {
      return name.substr(0, rest) + "weight";
    }
  }
  return name;
}

// Module path between the prefix and ".lora_A.weight", e.g. "model.layers.0.self_attn.q_proj".
std::string module_of(const std::string& name) {
  const std::string base = base_weight_name(name);
  return base.empty() ? "" : base.substr(0, base.size() - std::strlen(".weight"));
}

bool is_lora_a(const std::string& name) { return ends_with(name, ".lora_A.weight"); }

// Checks names and shapes of a normalized tensor list against r; returns in_/out_features per module.
void check_lora_tensors(const std::vector<std::pair<std::string, at::Tensor>>& tensors, int64_t r,
                        const std::string& where) {
  std::map<std::string, std::pair<const at::Tensor*, const at::Tensor*>> pairs;  // module -> (A, B)
  for (const auto& [name, t] : tensors) {
    const std::string module = module_of(name);
    DTUNE_CHECK(!module.empty(), where, ": tensor \"", name, "\" is not a LoRA weight (expected ", kPrefix,
                "<module>.lora_A.weight or .lora_B.weight; dtune supports plain LoRA on linear layers)");
    DTUNE_CHECK(t.defined() && t.dim() == 2, where, ": tensor \"", name, "\" must be 2-D");
    auto& slot = is_lora_a(name) ? pairs[module].first : pairs[module].second;
    DTUNE_CHECK(slot == nullptr, where, ": tensor \"", name, "\" appears twice");
    slot = &t;
  }
  for (const auto& [module, ab] : pairs) {
    DTUNE_CHECK(ab.first != nullptr && ab.second != nullptr, where, ": module ", module, " has only lora_",
                ab.first ? "A" : "B", " (each LoRA module needs lora_A and lora_B)");
    DTUNE_CHECK(ab.first->size(0) == r, where, ": ", module, ".lora_A.weight has shape ", ab.first->sizes(),
                " but r = ", r, " (expected (r, in_features))");
    DTUNE_CHECK(ab.second->size(1) == r, where, ": ", module, ".lora_B.weight has shape ", ab.second->sizes(),
                " but r = ", r, " (expected (out_features, r))");
  }
}

}  // namespace

std::string base_weight_name(const std::string& lora_name) {
  const std::string prefix = kPrefix;
  if (lora_name.compare(0, prefix.size(), prefix) != 0) return "";
  for (const char* suffix : {".lora_A.weight", ".lora_B.weight"}) {
    if (ends_with(lora_name, suffix) && lora_name.size() > prefix.size() + std::strlen(suffix)) {
      return lora_name.substr(prefix.size(), lora_name.size() - prefix.size() - std::strlen(suffix)) + ".weight";
    }
  }
  return "";
}

bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      // Compare digit runs by value: strip leading zeros, then length, then text.
      size_t is = i, js = j;
      while (is + 1 < ie && a[is] == '0') ++is;
      while (js + 1 < je && b[js] == '0') ++js;
      if (ie - is != je - js) return ie - is < je - js;
      const int c = a.compare(is, ie - is, b, js, je - js);
      if (c != 0) return c < 0;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

void save_peft_adapter(const std::string& dir, const AdapterConfig& config,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  DTUNE_CHECK(config.r > 0, "save_peft_adapter(", dir, "): r must be positive, got ", config.r);
  DTUNE_CHECK(!tensors.empty(), "save_peft_adapter(", dir, "): no LoRA tensors to save");
  check_lora_tensors(tensors, config.r, "save_peft_adapter(" + dir + ")");
  std::vector<std::pair<std::string, at::Tensor>> fp32;
  fp32.reserve(tensors.size());
  for (const auto& [name, t] : tensors) fp32.emplace_back(name, t.detach().to(c10::kCPU, c10::kFloat).contiguous());

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

  StagingDir staging(dir);
  io_detail::write_json_file((fs::path(staging.path()) / kConfigFile).string(), j);
  save_safetensors((fs::path(staging.path()) / kWeightsFile).string(), fp32);
  staging.commit();
}

PeftAdapter load_peft_adapter(const std::string& dir, c10::Device device) {
  const std::string cfg_file = (fs::path(dir) / kConfigFile).string();
  const std::string weights_file = (fs::path(dir) / kWeightsFile).string();
  DTUNE_CHECK(fs::is_regular_file(cfg_file), cfg_file, " not found: --adapter must be a PEFT adapter folder "
              "(adapter_config.json + adapter_model.safetensors)");
  DTUNE_CHECK(fs::is_regular_file(weights_file), weights_file, " not found (adapters saved as .bin are not "
              "supported: re-save with safe_serialization=True)");
  const json j = io_detail::read_json_file(cfg_file);
  DTUNE_CHECK(j.is_object(), cfg_file, ": expected a JSON object");

  PeftAdapter out;
  AdapterConfig& c = out.config;
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

  const SafetensorsFile file = SafetensorsFile::open(weights_file);
  for (const auto& [name, entry] : file.entries()) {
    const std::string norm = strip_adapter_name(name);
    DTUNE_CHECK(!base_weight_name(norm).empty(), weights_file, ": tensor \"", name, "\" is not a LoRA lora_A/lora_B "
                "weight (embedding LoRA, DoRA magnitudes and biases are not supported)");
    out.tensors.emplace_back(norm, file.load(name, c10::kFloat, device));
  }
  DTUNE_CHECK(!out.tensors.empty(), weights_file, ": holds no tensors");
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const auto& a, const auto& b) { return natural_less(a.first, b.first); });
  check_lora_tensors(out.tensors, c.r, weights_file);

  // target_modules: a list, or a regex string (then taken from the tensor names).
  if (j.contains("target_modules") && j.at("target_modules").is_array()) {
    for (const json& m : j.at("target_modules")) {
      DTUNE_CHECK(m.is_string(), cfg_file, ": target_modules must be a list of strings");
      c.target_modules.push_back(m.get<std::string>());
    }
    std::sort(c.target_modules.begin(), c.target_modules.end());
  } else {
    std::set<std::string> names;
    for (const auto& [name, t] : out.tensors) {
      const std::string module = module_of(name);
      names.insert(module.substr(module.rfind('.') + 1));
    }
    c.target_modules.assign(names.begin(), names.end());
  }
  return out;
}

at::Tensor lora_delta(const at::Tensor& A, const at::Tensor& B, const AdapterConfig& config) {
  DTUNE_CHECK(A.dim() == 2 && B.dim() == 2 && B.size(1) == A.size(0), "lora_delta: shapes ", A.sizes(), " and ",
              B.sizes(), " are not (r, in) and (out, r)");
  DTUNE_CHECK(config.r > 0, "lora_delta: r must be positive");
  const double scale = config.use_rslora ? config.alpha / std::sqrt(static_cast<double>(config.r))
                                         : config.alpha / static_cast<double>(config.r);
  return at::matmul(B.to(c10::kFloat), A.to(c10::kFloat)).mul_(scale);
}

}  // namespace dtune
