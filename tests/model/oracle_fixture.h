// Test helper: runs scripts/model_oracle.py (transformers + peft) once per test executable for
// every test model and hands out its reference tensors. Shared by tests/model and tests/lora.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <boost/test/unit_test.hpp>

#include "dtune/io/safetensors.h"

namespace dtune::test {

// The models every parity test runs on: the tiny random fixtures (Llama, Llama 3.1 RoPE
// scaling + tied + head_dim != H / heads, Qwen2 tied and untied) and SmolLM2-135M-Instruct
// when models/ holds it (CI does; a bare checkout logs that it is skipped).
inline std::map<std::string, std::string> test_models() {
  std::map<std::string, std::string> models;
  for (const char* name : {"tiny_llama", "tiny_llama3", "tiny_qwen2_tied", "tiny_qwen2"}) {
    models[name] = std::string(DTUNE_TEST_DATA) + "/model/" + name;
  }
  const std::string smol = std::string(DTUNE_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct";
  if (std::filesystem::exists(smol + "/config.json")) {
    models["smollm2"] = smol;
  } else {
    BOOST_TEST_MESSAGE("SKIP smollm2: " << smol << " is absent (run scripts/setup.sh)");
  }
  return models;
}

// A key that changes when the oracle script, the python or any test model changes.
inline std::string oracle_cache_key(const std::map<std::string, std::string>& models) {
  namespace fs = std::filesystem;
  std::string key = DTUNE_PYTHON;
  auto add = [&](const fs::path& p) {
    if (!fs::exists(p)) return;
    key += p.string() + ":" + std::to_string(fs::file_size(p)) + ":" +
           std::to_string(fs::last_write_time(p).time_since_epoch().count()) + ";";
  };
  add(fs::path(DTUNE_SOURCE_DIR) / "scripts" / "model_oracle.py");
  for (const auto& [name, dir] : models) {
    add(fs::path(dir) / "config.json");
    add(fs::path(dir) / "model.safetensors");
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016zx", std::hash<std::string>{}(key));
  return hex;
}

// name -> the oracle's output file. The oracle runs on first use (one Python process for all
// models) unless a finished run with the same cache key exists in the temp folder, so the
// model and LoRA test executables share one run. Concurrent runs each write a private folder
// and rename it into place; the loser of the race uses the winner's. Throws if the oracle fails.
inline const std::map<std::string, std::string>& oracle_files() {
  static const std::map<std::string, std::string> files = [] {
    namespace fs = std::filesystem;
    const auto models = test_models();
    const fs::path final_dir = fs::temp_directory_path() / ("dtune_model_oracle_" + oracle_cache_key(models));
    std::map<std::string, std::string> out;
    for (const auto& [name, path] : models) out[name] = (final_dir / (name + ".safetensors")).string();
    if (fs::exists(final_dir / "done")) return out;

    const fs::path dir = final_dir.string() + ".tmp" + std::to_string(::getpid());
    fs::create_directories(dir);
    std::string cmd = std::string(DTUNE_PYTHON) + " " + DTUNE_SOURCE_DIR + "/scripts/model_oracle.py";
    for (const auto& [name, path] : models) {
      cmd += " --model " + path + " --out " + (dir / (name + ".safetensors")).string();
    }
    cmd += " > " + (dir / "oracle.log").string() + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      throw std::runtime_error("model_oracle.py failed; see " + (dir / "oracle.log").string());
    }
    std::ofstream(dir / "done") << "ok\n";
    std::error_code ec;
    fs::rename(dir, final_dir, ec);
    if (ec) fs::remove_all(dir, ec);  // another process finished first: use its files
    return out;
  }();
  return files;
}

// One reference tensor of a model's oracle output (CPU; int64 stays int64, floats fp32).
inline at::Tensor oracle_tensor(const std::string& model, const std::string& name) {
  const auto file = SafetensorsFile::open(oracle_files().at(model));
  const auto& e = file.entries().at(name);
  const auto dtype = e.dtype == "I64" ? at::kLong : at::kFloat;
  return file.load(name, dtype, at::kCPU);
}

// Every oracle tensor whose name starts with prefix, prefix removed, in file order.
inline std::vector<std::pair<std::string, at::Tensor>> oracle_tensors_with_prefix(
    const std::string& model, const std::string& prefix) {
  const auto file = SafetensorsFile::open(oracle_files().at(model));
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [name, e] : file.entries()) {
    if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), file.load(name, at::kFloat, at::kCPU));
  }
  return out;
}

// max |a - b| / max(1, max |b|): the error relative to the reference's scale.
inline double scaled_max_diff(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>() / scale;
}

}  // namespace dtune::test
