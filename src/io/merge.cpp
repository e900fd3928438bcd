// merge_adapter: base weights + PEFT LoRA deltas -> a full Hugging Face model folder.
#include "dtune/io/merge.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>

#include <ATen/core/Tensor.h>

#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/io/dtype_names.h"
#include "dtune/io/model_config.h"
#include "dtune/io/peft_adapter.h"
#include "dtune/io/safetensors.h"
#include "dtune/io/staging_dir.h"
#include "dtune/io/tokenizer_files.h"
#include "json_file.h"

namespace dtune {

namespace {

namespace fs = std::filesystem;

bool is_floating(c10::ScalarType t) { return c10::isFloatingType(t); }

const char* hf_dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return "float32";
    case c10::kHalf: return "float16";
    case c10::kBFloat16: return "bfloat16";
    default: return "float64";
  }
}

// --dtype -> scalar type; "auto" picks the base files' (single) floating dtype.
c10::ScalarType output_dtype(const std::string& flag, const WeightStore& base, const std::string& model_dir) {
  if (flag != "auto") return dtype_from_name(flag, "--dtype (auto | fp32 | bf16 | fp16)");
  std::map<c10::ScalarType, int64_t> counts;
  for (const std::string& name : base.names()) {
    const c10::ScalarType t = scalar_type_from_safetensors(base.entry(name).dtype);
    if (is_floating(t)) ++counts[t];
  }
  DTUNE_CHECK(!counts.empty(), model_dir, ": no floating-point weights found");
  if (counts.size() > 1) {
    log::warn(str(model_dir, " mixes floating dtypes; --dtype auto uses the most common one"));
  }
  return std::max_element(counts.begin(), counts.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; })->first;
}

std::string shard_name(int64_t k, int64_t n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05lld-of-%05lld.safetensors", static_cast<long long>(k),
                static_cast<long long>(n));
  return buf;
}

}  // namespace

uint64_t parse_byte_size(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  DTUNE_CHECK(i > 0 && i <= 15, "--max-shard-size \"", text, "\" must be a number with an optional unit, e.g. 2GB, "
              "500MB, 1GiB");
  const uint64_t number = std::stoull(text.substr(0, i));
  std::string unit = text.substr(i);
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  static const std::map<std::string, uint64_t> kUnits = {
      {"", 1},           {"B", 1},           {"KB", 1000},       {"MB", 1000000},  {"GB", 1000000000},
      {"KIB", 1ull << 10}, {"MIB", 1ull << 20}, {"GIB", 1ull << 30}};
  auto it = kUnits.find(unit);
  DTUNE_CHECK(it != kUnits.end(), "--max-shard-size \"", text, "\": unknown unit \"", text.substr(i),
              "\" (use B, KB, MB, GB, KiB, MiB or GiB)");
  DTUNE_CHECK(number > 0, "--max-shard-size must be positive");
  return number * it->second;
}

MergeReport merge_adapter(const MergeOptions& o) {
  load_model_config(o.model_dir);  // rejects unsupported architectures before any work
  const WeightStore base = WeightStore::open(o.model_dir);
  const PeftAdapter adapter = load_peft_adapter(o.adapter_dir, c10::Device(c10::kCPU));
  const c10::ScalarType out_type = output_dtype(o.dtype, base, o.model_dir);

  // Every adapter module's base weight: name and (out, in) shape must match.
  std::map<std::string, const LoraModuleWeights*> lora;  // base weight name -> its module
  for (const LoraModuleWeights& m : adapter.modules) {
    const std::string target = m.module + ".weight";
    lora[target] = &m;
    DTUNE_CHECK(base.contains(target), "adapter ", o.adapter_dir, " does not match base model ", o.model_dir,
                ": the adapter updates \"", target, "\" but the base model has no such weight (was the adapter "
                "trained on a different model? see base_model_name_or_path in adapter_config.json)");
    const TensorEntry& e = base.entry(target);
    const std::vector<int64_t> want = {m.b.size(0), m.a.size(1)};
    DTUNE_CHECK(e.shape == want, "adapter ", o.adapter_dir, " does not match base model ", o.model_dir, ": \"",
                target, "\" has shape ", at::IntArrayRef(e.shape), " but the LoRA update B @ A has shape ",
                at::IntArrayRef(want));
  }

  // Plan shards from the entry sizes so that file names can carry the shard count.
  std::vector<std::string> names = base.names();
  std::sort(names.begin(), names.end(), natural_less);
  std::vector<std::vector<std::string>> shards(1);
  uint64_t shard_bytes = 0, total_bytes = 0;
  std::map<std::string, c10::ScalarType> type_of;
  for (const std::string& name : names) {
    const TensorEntry& e = base.entry(name);
    const c10::ScalarType src = scalar_type_from_safetensors(e.dtype);
    const c10::ScalarType dst = is_floating(src) ? out_type : src;
    type_of[name] = dst;
    const uint64_t bytes = (e.end - e.begin) / safetensors_dtype_size(e.dtype) * c10::elementSize(dst);
    if (!shards.back().empty() && shard_bytes + bytes > o.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(name);
    shard_bytes += bytes;
    total_bytes += bytes;
  }

  StagingDir staging(o.output_dir);
  const fs::path out(staging.path());
  MergeReport report;
  report.shards = static_cast<int64_t>(shards.size());
  report.total_bytes = total_bytes;
  report.dtype = hf_dtype_name(out_type);
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string file = shards.size() == 1 ? "model.safetensors" : shard_name(k + 1, report.shards);
    std::vector<std::pair<std::string, at::Tensor>> tensors;  // one shard in memory at a time
    for (const std::string& name : shards[k]) {
      auto it = lora.find(name);
      if (it == lora.end()) {
        tensors.emplace_back(name, base.load(name, type_of[name], c10::kCPU));
        continue;
      }
      at::Tensor w = base.load(name, c10::kFloat, c10::kCPU);
      w.add_(lora_delta(it->second->a, it->second->b, it->second->scale));
      tensors.emplace_back(name, w.to(type_of[name]));
      ++report.merged_weights;
    }
    save_safetensors((out / file).string(), tensors);
    for (const auto& [name, t] : tensors) weight_map[name] = file;
    report.total_weights += static_cast<int64_t>(tensors.size());
  }
  if (shards.size() > 1) {
    nlohmann::json index;
    index["metadata"] = {{"total_size", total_bytes}};
    index["weight_map"] = weight_map;
    io_detail::write_json_file((out / "model.safetensors.index.json").string(), index);
  }

  // config.json as given, except the dtype field, which now describes the merged weights.
  nlohmann::json cfg = io_detail::read_json_file((fs::path(o.model_dir) / "config.json").string());
  if (cfg.contains("torch_dtype")) cfg["torch_dtype"] = report.dtype;
  if (cfg.contains("dtype") || !cfg.contains("torch_dtype")) cfg["dtype"] = report.dtype;
  io_detail::write_json_file((out / "config.json").string(), cfg);
  // The base folder's generation knobs and tokenizer, so that the merged folder opens on its own.
  const fs::path generation_config = fs::path(o.model_dir) / "generation_config.json";
  if (fs::is_regular_file(generation_config))
    copy_file_checked(generation_config.string(), (out / "generation_config.json").string());
  copy_tokenizer_files(o.model_dir, out.string());
  staging.commit();
  return report;
}

}  // namespace dtune
