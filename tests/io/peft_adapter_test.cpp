// Tests PEFT adapter I/O both ways against peft 0.21: peft-saved adapters load in dtune with the
// exact tensors peft held in memory, and dtune-saved adapters load in PeftModel.from_pretrained.
#include "dtune/io/peft_adapter.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/allclose.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/randn.h>
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "dtune/core/error.h"
#include "dtune/generate/generator.h"
#include "dtune/io/safetensors.h"
#include "dtune/model/decoder.h"
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

// One adapter folder per form peft writes (peft_oracle.py make_variants), on one tiny Llama base,
// each with PeftModel.from_pretrained's logits; made once per test run.
const std::string& peft_variants() {
  static test::TempDir dir;
  static const bool made = [] {
    test::run_python("tests/io/oracles/peft_oracle.py make_variants '" + dir.path() + "' >&2");
    return true;
  }();
  (void)made;
  return dir.path();
}

const char* const kVariants[] = {"layers", "layers_pattern", "regex", "all_linear", "patterns", "rslora_patterns",
                                 "old_default_names"};

}  // namespace

BOOST_AUTO_TEST_SUITE(peft_adapter)

// Every form loads through the one loader into the modules peft adapted, each with peft's rank and
// scale, and `dtune generate --adapter`'s path (load_adapter_into) gives PeftModel's logits.
// Tolerance: fp32 forward on both sides, summation order only: 1e-5 of the logit scale.
BOOST_AUTO_TEST_CASE(every_peft_form_gives_peftmodel_logits) {
  const std::string root = peft_variants();
  const at::Tensor ids = at::tensor(std::vector<int64_t>{3, 17, 42, 9, 100, 7}).unsqueeze(0);
  const at::Tensor positions = at::arange(6, at::kLong).unsqueeze(0);
  for (const char* v : kVariants) {
    BOOST_TEST_CONTEXT(v) {
      Decoder d = Decoder::load(root + "/base_llama");
      load_adapter_into(d, root + "/" + v);
      at::NoGradGuard no_grad;
      const at::Tensor logits = d.logits(d.forward_hidden(ids, positions, AttentionMask::causal()))[0];
      const at::Tensor want = SafetensorsFile::open(root + "/" + v + "_logits.safetensors").load("logits", c10::kFloat, kCpu);
      const double scale = std::max(1.0, want.abs().max().item<double>());
      BOOST_TEST((logits - want).abs().max().item<double>() / scale < 1e-5);
      const at::Tensor base = [&] {
        Decoder plain = Decoder::load(root + "/base_llama");
        return plain.logits(plain.forward_hidden(ids, positions, AttentionMask::causal()))[0];
      }();
      BOOST_TEST((base - want).abs().max().item<double>() / scale > 1e-4);  // the adapter really acts
    }
  }
  // Which modules, ranks and scales (peft: r/alpha_pattern by get_pattern_key; rsLoRA alpha/sqrt(r)).
  auto module = [&](const PeftAdapter& a, const std::string& path) -> const LoraModuleWeights& {
    for (const LoraModuleWeights& m : a.modules)
      if (m.module == path) return m;
    BOOST_FAIL("no module " << path);
    return a.modules.front();
  };
  const PeftAdapter layers = load_peft_adapter(root + "/layers", kCpu);
  BOOST_TEST(layers.modules.size() == 2u);  // layers_to_transform = [0]: q and v of layer 0 only
  BOOST_TEST(module(layers, "model.layers.0.self_attn.q_proj").scale == 16.0 / 4.0);
  const PeftAdapter all = load_peft_adapter(root + "/all_linear", kCpu);
  BOOST_TEST(all.modules.size() == 14u);  // 7 projections x 2 layers, not lm_head
  const PeftAdapter p = load_peft_adapter(root + "/patterns", kCpu);
  BOOST_TEST(module(p, "model.layers.0.self_attn.q_proj").rank() == 4);
  BOOST_TEST(module(p, "model.layers.1.self_attn.q_proj").rank() == 6);
  BOOST_TEST(module(p, "model.layers.1.self_attn.q_proj").scale == 8.0 / 6.0);
  BOOST_TEST(module(p, "model.layers.0.self_attn.v_proj").rank() == 2);
  BOOST_TEST(module(p, "model.layers.0.self_attn.v_proj").scale == 8.0 / 2.0);
  BOOST_TEST(module(p, "model.layers.1.mlp.up_proj").scale == 3.0 / 4.0);
  const PeftAdapter rs = load_peft_adapter(root + "/rslora_patterns", kCpu);
  BOOST_TEST(module(rs, "model.layers.0.self_attn.k_proj").scale == 16.0 / std::sqrt(2.0));
  BOOST_TEST(module(rs, "model.layers.0.self_attn.o_proj").scale == 5.0 / std::sqrt(8.0));
  BOOST_TEST(module(rs, "model.layers.0.self_attn.q_proj").scale == 16.0 / std::sqrt(8.0));
}

// `dtune merge` on every form gives merge_and_unload()'s weights (fp32: within 1e-6, as
// merge_test's llama case) and copies every other weight bit for bit.
BOOST_AUTO_TEST_CASE(every_peft_form_merges_as_merge_and_unload) {
  const std::string root = peft_variants();
  test::TempDir dir;
  std::string pairs;  // "ADAPTER MERGED ..." for one oracle process
  for (const char* v : kVariants) {
    const std::string out = dir / (std::string(v) + "_merged");
    std::string log;
    BOOST_REQUIRE_MESSAGE(test::run_command(std::string("'") + DTUNE_BINARY + "' merge --model '" + root +
                                                "/base_llama' --adapter '" + root + "/" + v + "' --output '" + out + "'",
                                            &log) == 0, v << ": " << log);
    pairs += " '" + root + "/" + v + "' '" + out + "'";
  }
  std::istringstream lines(test::run_python("tests/io/oracles/peft_oracle.py check_merges '" + root + "/base_llama'" + pairs));
  for (const char* v : kVariants) {
    BOOST_TEST_CONTEXT(v) {
      std::string line;
      BOOST_REQUIRE(std::getline(lines, line));
      const json r = json::parse(line);
      BOOST_TEST(r["missing"].empty());
      BOOST_TEST(r["max_delta"].get<double>() > 1e-3);
      BOOST_TEST(r["max_abs"]["lora_targets"].get<double>() < 1e-6);
      BOOST_TEST(r["max_abs"]["other"].get<double>() == 0.0);
    }
  }
}

// lora.target_modules in peft's forms adapts what peft adapts: a fresh dtune adapter with a peft
// adapter's regex / "all-linear" / list targets has exactly its modules and shapes; saved with a
// pattern, the folder loads in PeftModel with every tensor.
BOOST_AUTO_TEST_CASE(target_modules_forms_adapt_what_peft_adapts) {
  const std::string root = peft_variants();
  struct Case {
    const char* variant;
    std::vector<std::string> targets;
    int64_t r;
  };
  const Case cases[] = {{"regex", {".*\\.(k_proj|o_proj)$"}, 4},
                        {"all_linear", {"all-linear"}, 2},
                        {"old_default_names", {"q_proj", "v_proj"}, 4}};
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.variant) {
      Decoder d = Decoder::load(root + "/base_llama");
      LoraOptions o;
      o.r = c.r;
      o.target_modules = c.targets;
      BOOST_CHECK_NO_THROW(validate(o, OptionNames::config_section("lora")));
      d.add_lora(o, 0);
      const PeftAdapter peft = load_peft_adapter(root + "/" + c.variant, kCpu);
      std::map<std::string, std::vector<int64_t>> mine, theirs;
      for (const auto& [name, t] : d.lora_parameters()) mine[name] = t.sizes().vec();
      for (const auto& [name, t] : peft.tensors) theirs[name] = t.sizes().vec();
      BOOST_TEST((mine == theirs));
      if (std::string(c.variant) == "all_linear") {
        test::TempDir dir;
        AdapterConfig cfg;
        static_cast<LoraOptions&>(cfg) = o;
        cfg.base_model_name_or_path = root + "/base_llama";
        std::vector<std::pair<std::string, at::Tensor>> tensors;
        for (const auto& [name, t] : d.lora_parameters()) tensors.emplace_back(name, t.detach().clone());
        save_peft_adapter(dir / "adapter", cfg, tensors);
        const json written = json::parse(test::read_file(dir / "adapter/adapter_config.json"));
        BOOST_TEST(written["target_modules"] == "all-linear");
        const json py = json::parse(test::run_python("tests/io/oracles/peft_oracle.py check_adapter '" + root +
                                                     "/base_llama' '" + (dir / "adapter") + "' '" +
                                                     (dir / "peft.safetensors") + "'"));
        BOOST_TEST(py["n_lora_params"] == tensors.size());
      }
    }
  }
}

// lora.init_adapter: the config must say the adapter's r, alpha, rsLoRA and projections; a
// contradiction names the option and both values; per-module ranks cannot be trained on.
BOOST_AUTO_TEST_CASE(init_adapter_config_must_match_the_adapter) {
  const std::string root = peft_variants();
  const std::string dir = root + "/layers";  // r = 4, lora_alpha = 16, q_proj + v_proj of layer 0
  const PeftAdapter a = load_peft_adapter(dir, kCpu);
  const OptionNames names = OptionNames::config_section("lora");
  LoraOptions o;  // the defaults: r = 4, alpha = 16, q_proj, v_proj
  BOOST_CHECK_NO_THROW(check_adapter_matches(o, names, a, dir));
  auto expect = [&](const LoraOptions& bad, const std::string& why) {
    try {
      check_adapter_matches(bad, names, a, dir);
      BOOST_ERROR("no Error for " << why);
    } catch (const Error& e) {
      BOOST_CHECK_MESSAGE(std::string(e.what()).find(why) != std::string::npos, e.what() << " lacks " << why);
    }
  };
  LoraOptions bad = o;
  bad.r = 8;
  expect(bad, "option lora.r is 8 but the adapter " + dir + " has r = 4");
  bad = o;
  bad.alpha = 32;
  expect(bad, "option lora.alpha is 32 but the adapter " + dir + " has lora_alpha = 16");
  bad = o;
  bad.use_rslora = true;
  expect(bad, "option lora.use_rslora is true");
  bad = o;
  bad.target_modules = {"q_proj", "k_proj", "v_proj"};
  expect(bad, "option lora.target_modules is k_proj,q_proj,v_proj but the adapter " + dir +
                  " has adapted projections = q_proj,v_proj");
  bad = o;
  bad.target_modules = {".*q_proj"};
  expect(bad, "does not select model.layers.0.self_attn.v_proj");
  bad = o;
  bad.target_modules = {"all-linear"};
  BOOST_CHECK_NO_THROW(check_adapter_matches(bad, names, a, dir));
  const PeftAdapter p = load_peft_adapter(root + "/patterns", kCpu);
  LoraOptions pat;
  pat.r = 4;
  pat.alpha = 8;
  pat.target_modules = {"q_proj", "up_proj", "v_proj"};
  BOOST_CHECK_EXCEPTION(check_adapter_matches(pat, names, p, root + "/patterns"), Error, [](const Error& e) {
    return std::string(e.what()).find("rank_pattern / alpha_pattern") != std::string::npos;
  });
}

// An adapter for another architecture (GPT-2's c_attn) is refused by generate's and merge's paths,
// naming the module, before any weight changes.
BOOST_AUTO_TEST_CASE(an_adapter_for_another_architecture_is_refused) {
  const std::string root = peft_variants();
  test::TempDir dir;
  const std::string adapter = dir / "gpt2";
  const std::string pre = "base_model.model.transformer.h.0.attn.c_attn.";
  AdapterConfig cfg;
  cfg.r = 2;
  cfg.target_modules = {".*c_attn"};
  save_peft_adapter(adapter, cfg, {{pre + "lora_A.weight", at::randn({2, 64})}, {pre + "lora_B.weight", at::randn({192, 2})}});
  Decoder d = Decoder::load(root + "/base_llama");
  BOOST_CHECK_EXCEPTION(load_adapter_into(d, adapter), Error, [](const Error& e) {
    return std::string(e.what()).find("transformer.h.0.attn.c_attn, which is not a projection of this model") !=
           std::string::npos;
  });
  BOOST_TEST(d.num_lora_parameters() == 0);
  std::string log;
  BOOST_TEST(test::run_command(std::string("'") + DTUNE_BINARY + "' merge --model '" + root + "/base_llama' --adapter '" +
                               adapter + "' --output '" + (dir / "merged") + "'", &log) != 0);
  BOOST_TEST(log.find("\"transformer.h.0.attn.c_attn.weight\" but the base model has no such weight") !=
             std::string::npos, log);
  BOOST_TEST(!std::filesystem::exists(dir / "merged"));
}

// What dtune cannot apply is refused before any work, naming the field and what to do.
BOOST_AUTO_TEST_CASE(refuses_what_it_cannot_apply_naming_the_field) {
  test::TempDir dir;
  const at::Tensor a = at::randn({2, 6}), b = at::randn({5, 2});
  const std::string pre = "base_model.model.model.layers.0.self_attn.q_proj.";
  const json cfg = {{"peft_type", "LORA"}, {"r", 2}, {"lora_alpha", 4}, {"target_modules", {"q_proj"}}};
  int n = 0;
  auto expect_refused = [&](json bad, const std::string& why) {
    const std::string sub = "bad" + std::to_string(n++);
    std::filesystem::create_directories(dir / sub);
    test::write_file(dir / (sub + "/adapter_config.json"), bad.dump());
    save_safetensors(dir / (sub + "/adapter_model.safetensors"), {{pre + "lora_A.weight", a}, {pre + "lora_B.weight", b}});
    expect_load_error(dir / sub, why);
  };
  json bad = cfg;
  bad["fan_in_fan_out"] = true;
  expect_refused(bad, "fan_in_fan_out");
  bad = cfg;
  bad["bias"] = "all";
  expect_refused(bad, "bias \"all\"");
  bad = cfg;
  bad["modules_to_save"] = {"lm_head"};
  expect_refused(bad, "\"modules_to_save\" is not supported");
  bad = cfg;
  bad["layer_replication"] = {{0, 1}};
  expect_refused(bad, "\"layer_replication\" is not supported");
  bad = cfg;
  bad["lora_bias"] = true;
  expect_refused(bad, "lora_bias");
  bad = cfg;
  bad["rank_pattern"] = {{"q_proj", 3}};  // the tensors have rank 2
  expect_refused(bad, "r = 3 (rank_pattern)");
}

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
                    false, root + "/base_llama", {}, {}};
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
  BOOST_CHECK_THROW(save_peft_adapter(dir / "x", AdapterConfig{3, 6, 0, {"q_proj"}, false, "", {}, {}}, {{pre + "lora_A.weight", a},
                                                                                     {pre + "lora_B.weight", b}}),
                    Error);
}

BOOST_AUTO_TEST_CASE(lora_delta_scales) {
  const at::Tensor a = at::randn({4, 6}), b = at::randn({5, 4});
  const at::Tensor ba = at::matmul(b, a);
  // Tolerance: same fp32 matmul, only the scale multiply differs in placement (1e-6 relative).
  BOOST_TEST(at::allclose(lora_delta(a, b, AdapterConfig{4, 8, 0, {}, false, "", {}, {}}), ba.mul(2.0), 1e-6, 1e-6));
  BOOST_TEST(at::allclose(lora_delta(a, b, AdapterConfig{4, 8, 0, {}, true, "", {}, {}}), ba.mul(4.0), 1e-6, 1e-6));  // 8/sqrt(4)
  BOOST_TEST(lora_delta(a.to(c10::kBFloat16), b, AdapterConfig{4, 8, 0, {}, false, "", {}, {}}).scalar_type() == c10::kFloat);
  BOOST_TEST(natural_less("layers.2.x", "layers.10.x"));
  BOOST_TEST(!natural_less("layers.10.x", "layers.2.x"));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace dtune
