// PEFT LoRA adapter folders: save (peft-loadable), load (validated, names normalized), lora_delta.
#include "dtune/io/peft_adapter.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

#include <ATen/core/Tensor.h>

#include "dtune/core/error.h"
#include "dtune/io/safetensors.h"
#include "dtune/io/staging_dir.h"
#include "dtune/io/tokenizer_files.h"
#include "json_file.h"

namespace dtune {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";

// Pairs the lora_A / lora_B tensors of each module (tensors hold names parse_peft_lora_key
// reads); returns the modules in the tensors' order, scale unset.
std::vector<LoraModuleWeights> pair_modules(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                            const std::string& where) {
  std::vector<LoraModuleWeights> modules;
  std::map<std::string, size_t> index;  // module -> position in modules
  for (const auto& [name, t] : tensors) {
    const std::optional<PeftLoraKey> key = parse_peft_lora_key(name);
    DTUNE_CHECK(key.has_value(), where, ": tensor \"", name, "\" is not a LoRA weight (expected ", kPeftPrefix,
                "<module>.lora_A.weight or .lora_B.weight; dtune supports plain LoRA on linear layers)");
    DTUNE_CHECK(t.defined() && t.dim() == 2, where, ": tensor \"", name, "\" must be 2-D");
    auto [it, added] = index.emplace(key->module, modules.size());
    if (added) modules.push_back({key->module, at::Tensor(), at::Tensor(), 0.0});
    at::Tensor& slot = key->matrix == LoraMatrix::kA ? modules[it->second].a : modules[it->second].b;
    DTUNE_CHECK(!slot.defined(), where, ": tensor \"", name, "\" appears twice");
    slot = t;
  }
  for (const LoraModuleWeights& m : modules)
    DTUNE_CHECK(m.a.defined() && m.b.defined(), where, ": module ", m.module, " has only lora_",
                m.a.defined() ? "A" : "B", " (each LoRA module needs lora_A and lora_B)");
  return modules;
}

// The module's A (r, in) and B (out, r) must have rank r.
void check_rank(const LoraModuleWeights& m, int64_t r, const std::string& where, const char* why) {
  DTUNE_CHECK(m.a.size(0) == r, where, ": ", m.module, ".lora_A.weight has shape ", m.a.sizes(), " but r = ", r,
              why, " (expected (r, in_features))");
  DTUNE_CHECK(m.b.size(1) == r, where, ": ", m.module, ".lora_B.weight has shape ", m.b.sizes(), " but r = ", r,
              why, " (expected (out_features, r))");
}

}  // namespace

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
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::string& tokenizer_source) {
  DTUNE_CHECK(config.r > 0, "save_peft_adapter(", dir, "): r must be positive, got ", config.r);
  DTUNE_CHECK(!tensors.empty(), "save_peft_adapter(", dir, "): no LoRA tensors to save");
  for (const LoraModuleWeights& m : pair_modules(tensors, "save_peft_adapter(" + dir + ")"))
    check_rank(m, config.r, "save_peft_adapter(" + dir + ")", "");
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
  // A list of names, or the one "all-linear" / regex string, as peft's LoraConfig holds it.
  j["target_modules"] = config.targets_by_pattern() ? json(config.target_modules[0]) : json(config.target_modules);
  j["task_type"] = "CAUSAL_LM";
  if (config.use_rslora) j["use_rslora"] = true;  // peft >= 0.7 only; rsLoRA needs it anyway
  if (!config.layers_to_transform.empty()) j["layers_to_transform"] = config.layers_to_transform;
  if (!config.layers_pattern.empty()) j["layers_pattern"] = config.layers_pattern;

  StagingDir staging(dir);
  io_detail::write_json_file((fs::path(staging.path()) / kConfigFile).string(), j);
  save_safetensors((fs::path(staging.path()) / kWeightsFile).string(), fp32);
  if (!tokenizer_source.empty()) copy_tokenizer_files(tokenizer_source, staging.path());
  staging.commit();
}

PeftAdapter load_peft_adapter(const std::string& dir, c10::Device device) {
  const std::string cfg_file = (fs::path(dir) / kConfigFile).string();
  const std::string weights_file = (fs::path(dir) / kWeightsFile).string();
  DTUNE_CHECK(fs::is_regular_file(cfg_file), cfg_file, " not found: --adapter must be a PEFT adapter folder "
              "(adapter_config.json + adapter_model.safetensors)");
  DTUNE_CHECK(fs::is_regular_file(weights_file), weights_file, " not found (adapters saved as .bin are not "
              "supported: re-save with safe_serialization=True)");
  const AdapterConfigFile cfg = read_adapter_config(cfg_file);

  PeftAdapter out;
  out.config = cfg.config;
  AdapterConfig& c = out.config;
  const SafetensorsFile file = SafetensorsFile::open(weights_file);
  for (const auto& [name, entry] : file.entries()) {
    const std::optional<PeftLoraKey> key = parse_peft_lora_key(name);
    DTUNE_CHECK(key.has_value(), weights_file, ": tensor \"", name, "\" is not a LoRA lora_A/lora_B "
                "weight (embedding LoRA, DoRA magnitudes and biases are not supported)");
    out.tensors.emplace_back(peft_lora_key(key->module, key->matrix), file.load(name, c10::kFloat, device));
  }
  DTUNE_CHECK(!out.tensors.empty(), weights_file, ": holds no tensors");
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const auto& a, const auto& b) { return natural_less(a.first, b.first); });
  out.modules = pair_modules(out.tensors, weights_file);
  for (LoraModuleWeights& m : out.modules) {
    const ModuleRankAlpha ra = module_rank_alpha(cfg, m.module, cfg_file);
    check_rank(m, ra.r, weights_file, ra.r_from_pattern ? " (rank_pattern)" : "");
    m.scale = lora_scale(ra.alpha, ra.r, c.use_rslora);
  }

  // target_modules as the short names of the adapted projections, whatever form the file gives
  // (a list, a regex, "all-linear", full module paths): the tensors say what is adapted.
  std::set<std::string> names;
  for (const LoraModuleWeights& m : out.modules) names.insert(m.module.substr(m.module.rfind('.') + 1));
  c.target_modules.assign(names.begin(), names.end());
  return out;
}

void check_adapter_matches(const LoraOptions& o, const OptionNames& names, const PeftAdapter& adapter,
                           const std::string& adapter_dir) {
  const AdapterConfig& a = adapter.config;
  auto fix = [&](const std::string& option, const auto& mine, const auto& theirs, const std::string& field) {
    return str("option ", option, " is ", mine, " but the adapter ", adapter_dir, " has ", field, " = ", theirs,
               ": set ", option, " = ", theirs, " (the run continues from that adapter and saves with the config's value)");
  };
  DTUNE_CHECK(o.r == a.r, fix(names("r"), o.r, a.r, "r"));
  DTUNE_CHECK(o.alpha == a.alpha, fix(names("alpha"), o.alpha, a.alpha, "lora_alpha"));
  DTUNE_CHECK(o.use_rslora == a.use_rslora, fix(names("use_rslora"), o.use_rslora ? "true" : "false",
                                                a.use_rslora ? "true" : "false", "use_rslora"));
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& x : v) out += (out.empty() ? "" : ",") + x;
    return out;
  };
  if (o.targets_by_pattern()) {  // all-linear or a regex: every adapted module must be one it selects
    for (const LoraModuleWeights& m : adapter.modules)
      DTUNE_CHECK(o.targets(m.module), "option ", names("target_modules"), " is ", o.target_modules[0],
                  ", which does not select ", m.module, " that the adapter ", adapter_dir, " adapts: set ",
                  names("target_modules"), " = ", join(a.target_modules));
  } else {
    std::vector<std::string> mine = o.target_modules;
    std::sort(mine.begin(), mine.end());
    DTUNE_CHECK(mine == a.target_modules, fix(names("target_modules"), join(mine), join(a.target_modules),
                                              "adapted projections"));
  }
  for (const LoraModuleWeights& m : adapter.modules)
    DTUNE_CHECK(m.rank() == a.r && m.scale == a.scale(), "the adapter ", adapter_dir, " gives ", m.module,
                " its own rank or alpha (rank_pattern / alpha_pattern: rank ", m.rank(), ", scale ", m.scale,
                "): dtune trains one r and lora_alpha for every module; start from an adapter without patterns");
}

}  // namespace dtune
