// Tests `dtune merge` end to end against peft's merge_and_unload(): the merged folder loads in
// transformers with the reference weights, for a sharded fp32 Llama and a tied bf16 Qwen2 + rsLoRA.
#include "dtune/io/merge.h"

#include <ATen/core/Tensor.h>
#include <ATen/ops/randn.h>
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>

#include "dtune/core/error.h"
#include "dtune/io/model_config.h"
#include "dtune/io/peft_adapter.h"
#include "dtune/io/safetensors.h"
#include "io_test_util.h"

namespace dtune {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string merge_cmd(const std::string& base, const std::string& adapter, const std::string& out,
                      const std::string& extra = "") {
  return std::string("'") + DTUNE_BINARY + "' merge --model '" + base + "' --adapter '" + adapter + "' --output '" +
         out + "' " + extra;
}

json check_merge(const std::string& base, const std::string& adapter, const std::string& out) {
  return json::parse(test::run_python("tests/io/oracles/peft_oracle.py check_merge '" + base + "' '" + adapter +
                                      "' '" + out + "'"));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(merge)

// fp32: both sides compute W + scale * (B @ A) in fp32; only matmul summation order can differ,
// so the weights agree within 1e-6 absolute (|W| ~ 0.02..1, deltas ~ 1e-2).
BOOST_AUTO_TEST_CASE(llama_fp32_sharded_matches_peft) {
  const std::string root = test::peft_fixtures();
  test::TempDir dir;
  const std::string out = dir / "merged";
  std::string log;
  BOOST_REQUIRE_MESSAGE(test::run_command(merge_cmd(root + "/base_llama", root + "/peft_llama", out,
                                                    "--max-shard-size 200KB"), &log) == 0, log);
  BOOST_TEST(log.find("merged 14 of") != std::string::npos, log);  // 7 modules x 2 layers
  BOOST_TEST(fs::exists(out + "/model.safetensors.index.json"));
  const json index = json::parse(test::read_file(out + "/model.safetensors.index.json"));
  std::set<std::string> shards;
  for (const auto& [name, file] : index["weight_map"].items()) shards.insert(file.get<std::string>());
  BOOST_TEST(shards.size() > 1u);
  for (const std::string& f : shards) {
    BOOST_TEST(f.find("-of-0000" + std::to_string(shards.size()) + ".safetensors") == 11u, f);  // HF naming
    BOOST_TEST(fs::exists(out + "/" + f));
  }
  BOOST_TEST(fs::exists(out + "/generation_config.json"));
  const ModelConfig c = load_model_config(out);
  BOOST_TEST(!c.tie_word_embeddings);
  const json r = check_merge(root + "/base_llama", root + "/peft_llama", out);
  BOOST_TEST_MESSAGE("oracle: " << r.dump());
  BOOST_TEST(r["dtype"] == "float32");
  BOOST_TEST(r["missing"].empty());
  BOOST_TEST(r["max_delta"].get<double>() > 1e-3);  // the adapter really changes the weights
  BOOST_TEST(r["max_abs"]["lora_targets"].get<double>() < 1e-6);
  BOOST_TEST(r["max_abs"]["other"].get<double>() == 0.0);              // copied bit for bit
  // Merged model logits = adapter model logits (fp32 forward, different association order).
  BOOST_TEST(r["logits_max_abs"].get<double>() < 1e-4 * std::max(1.0, r["logits_scale"].get<double>()));
}

// bf16: dtune rounds (W + delta) once to bf16; peft adds a bf16-rounded delta to bf16 W (two
// roundings), so they may differ by one bf16 ulp at the value.
BOOST_AUTO_TEST_CASE(qwen2_bf16_tied_rslora_matches_peft) {
  const std::string root = test::peft_fixtures();
  test::TempDir dir;
  const std::string out = dir / "merged";
  MergeOptions o;
  o.model_dir = root + "/base_qwen2";
  o.adapter_dir = root + "/peft_qwen2";
  o.output_dir = out;
  const MergeReport rep = merge_adapter(o);
  BOOST_TEST(rep.dtype == "bfloat16");
  BOOST_TEST(rep.shards == 1);
  BOOST_TEST(rep.merged_weights == 6);  // q/k/v x 2 layers
  BOOST_TEST(SafetensorsFile::open(out + "/model.safetensors").entries().at("model.embed_tokens.weight").dtype ==
             "BF16");
  const json r = check_merge(o.model_dir, o.adapter_dir, out);
  BOOST_TEST_MESSAGE("oracle: " << r.dump());
  BOOST_TEST(r["dtype"] == "bfloat16");
  BOOST_TEST(r["max_delta"].get<double>() > 1e-3);
  BOOST_TEST(r["max_ulps"]["lora_targets"].get<double>() <= 1.0);
  BOOST_TEST(r["max_abs"]["other"].get<double>() == 0.0);
}

BOOST_AUTO_TEST_CASE(mismatched_adapter_and_bad_options_fail_cleanly) {
  const std::string root = test::peft_fixtures();
  test::TempDir dir;
  std::string log;
  // Adapters for a layer the base lacks, or for a different width: Error, and no output folder.
  const at::Tensor a = at::randn({4, 64}), b = at::randn({64, 4});
  const AdapterConfig cfg{4, 8, 0, {"q_proj"}, false, "", {}, {}};
  save_peft_adapter(dir / "layer9", cfg, {{"base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight", a},
                                          {"base_model.model.model.layers.9.self_attn.q_proj.lora_B.weight", b}});
  save_peft_adapter(dir / "wide", cfg, {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", a},
                                        {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                                         at::randn({96, 4})}});
  for (const char* bad : {"layer9", "wide"}) {
    log.clear();
    BOOST_TEST(test::run_command(merge_cmd(root + "/base_llama", dir / bad, dir / "out"), &log) == 1);
    BOOST_TEST(log.find("does not match base model") != std::string::npos, log);
  }
  BOOST_TEST(!fs::exists(dir / "out"));
  size_t leftovers = 0;  // only the two adapter folders: the staging folders were removed
  for (auto it = fs::directory_iterator(dir.path()); it != fs::directory_iterator(); ++it) ++leftovers;
  BOOST_TEST(leftovers == 2u);
  log.clear();
  BOOST_TEST(test::run_command(merge_cmd(root + "/base_llama", root + "/peft_llama", dir / "o", "--dtype fp8"), &log) == 1);
  BOOST_TEST(log.find("--dtype") != std::string::npos, log);
  log.clear();
  BOOST_TEST(test::run_command(std::string("'") + DTUNE_BINARY + "' merge --model x", &log) == 2);
  log.clear();
  BOOST_TEST(test::run_command(std::string("'") + DTUNE_BINARY + "' merge --help", &log) == 0);
  BOOST_TEST(log.find("--max-shard-size") != std::string::npos);
  BOOST_TEST(parse_byte_size("2GB") == 2000000000ull);
  BOOST_TEST(parse_byte_size("1GiB") == (1ull << 30));
  BOOST_TEST(parse_byte_size("100kb") == 100000ull);
  BOOST_CHECK_THROW(parse_byte_size("2 GB"), Error);
  BOOST_CHECK_THROW(parse_byte_size("GB"), Error);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace dtune
