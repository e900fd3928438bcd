// Tests PEFT adapter I/O both ways against peft 0.21: peft-saved adapters load in dtune with the
// exact tensors peft held in memory, and dtune-saved adapters load in PeftModel.from_pretrained.
#include "dtune/io/peft_adapter.h"

#include <ATen/core/Tensor.h>
#include <ATen/ops/allclose.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/randn.h>
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

#include "dtune/core/error.h"
#include "dtune/io/safetensors.h"
#include "io_test_util.h"

namespace dtune {
namespace {

using nlohmann::json;
const c10::Device kCpu(c10::kCPU);

// The in-memory reference names carry the adapter name: "...lora_A.default.weight".
std::string without_default(std::string name) {
  const size_t at = name.find(".default.");
  if (at != std::string::npos) name.erase(at, std::strlen(".default"));
  return name;
}

void expect_load_error(const std::string& dir, const std::string& why) {
  try {
    load_peft_adapter(dir, kCpu);
    BOOST_ERROR("no Error for " << why);
  } catch (const Error& e) {
    BOOST_CHECK_MESSAGE(std::string(e.what()).find(why) != std::string::npos, e.what() << " lacks " << why);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(peft_adapter)

// peft get_peft_model + save_pretrained -> dtune: same config, same tensors bit for bit.
BOOST_AUTO_TEST_CASE(loads_peft_saved_adapters_exactly) {
  const std::string root = test::peft_fixtures();
  for (const char* arch : {"llama", "qwen2"}) {
    BOOST_TEST_CONTEXT(arch) {
      const PeftAdapter a = load_peft_adapter(root + "/peft_" + arch, kCpu);
      const SafetensorsFile ref = SafetensorsFile::open(root + "/peft_" + arch + "_ref.safetensors");
      BOOST_TEST(a.tensors.size() == ref.entries().size());
      for (const auto& [ref_name, entry] : ref.entries()) {
        const std::string name = without_default(ref_name);
        auto it = std::find_if(a.tensors.begin(), a.tensors.end(), [&](const auto& p) { return p.first == name; });
        BOOST_REQUIRE_MESSAGE(it != a.tensors.end(), "dtune lacks " << name);
        BOOST_TEST(it->second.scalar_type() == c10::kFloat);
        BOOST_TEST(at::equal(it->second, ref.load(ref_name, c10::kFloat, kCpu)));
      }
      if (std::string(arch) == "llama") {
        BOOST_TEST(a.config.r == 4);
        BOOST_TEST(a.config.alpha == 8.0);
        BOOST_TEST(!a.config.use_rslora);
        BOOST_TEST(a.config.target_modules.size() == 7u);
        // Natural order: layer 0's modules first, lora_A before lora_B.
        BOOST_TEST(a.tensors[0].first == "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight");
      } else {
        BOOST_TEST(a.config.r == 8);
        BOOST_TEST(a.config.use_rslora);
        BOOST_TEST((a.config.target_modules == std::vector<std::string>{"k_proj", "q_proj", "v_proj"}));
      }
    }
  }
}

// dtune save -> peft PeftModel.from_pretrained holds exactly the saved tensors and config.
BOOST_AUTO_TEST_CASE(saved_adapter_loads_in_peft) {
  const std::string root = test::peft_fixtures();
  test::TempDir dir;
  const PeftAdapter src = load_peft_adapter(root + "/peft_llama", kCpu);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, t] : src.tensors) tensors.emplace_back(name, at::randn(t.sizes()));
  AdapterConfig cfg{4, 16.0, 0.05, {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
                    false, root + "/base_llama"};
  const std::string out = dir / "adapter";
  save_peft_adapter(out, cfg, tensors);
  save_peft_adapter(out, cfg, tensors);  // overwriting an existing adapter folder works

  // Only keys peft 0.6 accepts (older LoraConfig rejects unknown keys).
  const json written = json::parse(test::read_file(out + "/adapter_config.json"));
  const std::set<std::string> allowed = {"peft_type", "task_type", "r", "lora_alpha", "lora_dropout",
                                         "target_modules", "bias", "fan_in_fan_out", "inference_mode",
                                         "init_lora_weights", "base_model_name_or_path", "modules_to_save"};
  for (const auto& [key, v] : written.items()) BOOST_CHECK_MESSAGE(allowed.count(key), "unexpected key " << key);
  BOOST_TEST(SafetensorsFile::open(out + "/adapter_model.safetensors").entries().size() == tensors.size());

  const std::string peft_out = dir / "peft_state.safetensors";
  const json py = json::parse(test::run_python("tests/io/oracles/peft_oracle.py check_adapter '" + root +
                                               "/base_llama' '" + out + "' '" + peft_out + "'"));
  BOOST_TEST(py["r"] == 4);
  BOOST_TEST(py["lora_alpha"].get<double>() == 16.0);
  BOOST_TEST(py["use_rslora"] == false);
  BOOST_TEST(py["n_lora_params"] == tensors.size());
  const SafetensorsFile peft_state = SafetensorsFile::open(peft_out);
  BOOST_TEST(peft_state.entries().size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    BOOST_TEST_CONTEXT(name) { BOOST_TEST(at::equal(peft_state.load(name, c10::kFloat, kCpu), t)); }
  }
}

// Names with the adapter name inside load normalized; bad folders give Errors naming the problem.
BOOST_AUTO_TEST_CASE(normalizes_names_and_rejects_bad_adapters) {
  test::TempDir dir;
  const at::Tensor a = at::randn({2, 6}), b = at::randn({5, 2});
  const std::string pre = "base_model.model.model.layers.0.self_attn.q_proj.";
  auto write_adapter = [&](const std::string& sub, const json& cfg,
                           const std::vector<std::pair<std::string, at::Tensor>>& t) {
    std::filesystem::create_directories(dir / sub);
    test::write_file(dir / (sub + "/adapter_config.json"), cfg.dump());
    save_safetensors(dir / (sub + "/adapter_model.safetensors"), t);
    return dir / sub;
  };
  const json cfg = {{"peft_type", "LORA"}, {"r", 2}, {"lora_alpha", 4}, {"target_modules", {"q_proj"}}};
  const PeftAdapter named =
      load_peft_adapter(write_adapter("named", cfg, {{pre + "lora_A.default.weight", a}, {pre + "lora_B.default.weight", b}}), kCpu);
  BOOST_REQUIRE_EQUAL(named.tensors.size(), 2u);
  BOOST_TEST(named.tensors[0].first == pre + "lora_A.weight");
  BOOST_TEST(named.tensors[1].first == pre + "lora_B.weight");
  BOOST_TEST(at::equal(named.tensors[1].second, b));

  json bad = cfg;
  bad["peft_type"] = "IA3";
  expect_load_error(write_adapter("ia3", bad, {{pre + "lora_A.weight", a}, {pre + "lora_B.weight", b}}), "IA3");
  bad = cfg;
  bad["r"] = 3;
  expect_load_error(write_adapter("rank", bad, {{pre + "lora_A.weight", a}, {pre + "lora_B.weight", b}}), "r = 3");
  bad = cfg;
  bad["use_dora"] = true;
  expect_load_error(write_adapter("dora", bad, {{pre + "lora_A.weight", a}, {pre + "lora_B.weight", b}}), "use_dora");
  bad = cfg;
  bad.erase("r");
  expect_load_error(write_adapter("no_r", bad, {{pre + "lora_A.weight", a}, {pre + "lora_B.weight", b}}), "\"r\"");
  expect_load_error(write_adapter("half", cfg, {{pre + "lora_A.weight", a}}), "only lora_A");
  expect_load_error(write_adapter("odd", cfg, {{pre + "lora_A.weight", a}, {pre + "lora_B.weight", b},
                                               {"base_model.model.model.embed_tokens.lora_embedding_A", a}}),
                    "lora_embedding_A");
  expect_load_error(dir / "absent", "adapter_config.json not found");
  BOOST_CHECK_THROW(save_peft_adapter(dir / "x", AdapterConfig{3, 6, 0, {"q_proj"}, false, ""}, {{pre + "lora_A.weight", a},
                                                                                     {pre + "lora_B.weight", b}}),
                    Error);
}

BOOST_AUTO_TEST_CASE(lora_delta_scales) {
  const at::Tensor a = at::randn({4, 6}), b = at::randn({5, 4});
  const at::Tensor ba = at::matmul(b, a);
  // Tolerance: same fp32 matmul, only the scale multiply differs in placement (1e-6 relative).
  BOOST_TEST(at::allclose(lora_delta(a, b, AdapterConfig{4, 8, 0, {}, false, ""}), ba.mul(2.0), 1e-6, 1e-6));
  BOOST_TEST(at::allclose(lora_delta(a, b, AdapterConfig{4, 8, 0, {}, true, ""}), ba.mul(4.0), 1e-6, 1e-6));  // 8/sqrt(4)
  BOOST_TEST(lora_delta(a.to(c10::kBFloat16), b, AdapterConfig{4, 8, 0, {}, false, ""}).scalar_type() == c10::kFloat);
  BOOST_TEST(natural_less("layers.2.x", "layers.10.x"));
  BOOST_TEST(!natural_less("layers.10.x", "layers.2.x"));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace dtune
