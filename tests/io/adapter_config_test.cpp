// Tests src/io/adapter_config.cpp: peft's own adapter_config.json (peft 0.21 save_pretrained,
// the fuzz corpus' seed) parses to its values, dtune's JSON parses back to the same config, and
// what dtune cannot apply is refused naming the file and key.
#include "dtune/io/adapter_config.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fstream>
#include <functional>

#include "dtune/core/error.h"

using nlohmann::json;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const dtune::Error& e) {
    return e.what();
  }
  return "";
}

json read(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

}  // namespace

BOOST_AUTO_TEST_CASE(peft_written_configs_parse) {
  const std::string dir = std::string(DTUNE_SOURCE_DIR) + "/tools/fuzz_adapter_config/corpus/";
  const dtune::AdapterConfig recipe = dtune::parse_adapter_config(read(dir + "peft_recipe.json"), "recipe");
  BOOST_TEST(recipe.r == 4);
  BOOST_TEST(recipe.alpha == 16.0);
  BOOST_TEST(recipe.dropout == 0.1);
  BOOST_TEST(!recipe.use_rslora);
  BOOST_TEST(recipe.target_modules == (std::vector<std::string>{"q_proj", "v_proj"}), boost::test_tools::per_element());
  const dtune::AdapterConfig rs = dtune::parse_adapter_config(read(dir + "peft_all_linear_rslora.json"), "rs");
  BOOST_TEST(rs.r == 16);
  BOOST_TEST(rs.use_rslora);
  BOOST_TEST(rs.target_modules.size() == 7u);
  BOOST_TEST(std::is_sorted(rs.target_modules.begin(), rs.target_modules.end()));
  // A regex string: the modules come from the tensor names (load_peft_adapter).
  BOOST_TEST(dtune::parse_adapter_config(read(dir + "peft_regex_modules.json"), "regex").target_modules.empty());
}

BOOST_AUTO_TEST_CASE(written_json_parses_back) {
  dtune::AdapterConfig c;
  c.r = 8;
  c.alpha = 32;
  c.dropout = 0.05;
  c.target_modules = {"k_proj", "q_proj"};
  c.use_rslora = true;
  c.base_model_name_or_path = "models/SmolLM2-135M-Instruct";
  const json j = dtune::adapter_config_json(c);
  BOOST_TEST(j.at("peft_type") == "LORA");
  BOOST_TEST(j.at("use_rslora") == true);
  const dtune::AdapterConfig back = dtune::parse_adapter_config(j, "written");
  BOOST_TEST(back.r == 8);
  BOOST_TEST(back.alpha == 32.0);
  BOOST_TEST(back.dropout == 0.05);
  BOOST_TEST(back.target_modules == c.target_modules, boost::test_tools::per_element());
  BOOST_TEST(back.base_model_name_or_path == c.base_model_name_or_path);
  c.use_rslora = false;
  BOOST_TEST(!dtune::adapter_config_json(c).contains("use_rslora"));  // peft 0.6 refuses unknown keys
}

BOOST_AUTO_TEST_CASE(what_dtune_cannot_apply_is_refused_by_key) {
  const json base = {{"peft_type", "LORA"}, {"r", 4}};
  const auto refused = [&](json patch) {
    json j = base;
    j.merge_patch(patch);
    return error_of([&] { (void)dtune::parse_adapter_config(j, "a/adapter_config.json"); });
  };
  BOOST_TEST(refused({{"peft_type", "IA3"}}) == "a/adapter_config.json: peft_type \"IA3\" is not supported (only LORA)");
  BOOST_TEST(refused({{"r", 0}}) == "a/adapter_config.json: \"r\" must be positive, got 0");
  BOOST_TEST(refused({{"use_dora", true}}) == "a/adapter_config.json: use_dora=true is not supported");
  BOOST_TEST(refused({{"bias", "all"}}).find("bias \"all\" is not supported") != std::string::npos);
  BOOST_TEST(refused({{"rank_pattern", {{"q_proj", 8}}}}).find("\"rank_pattern\" (per-module rank/alpha)") !=
             std::string::npos);
  BOOST_TEST(refused({{"modules_to_save", {"lm_head"}}}).find("\"modules_to_save\" is not supported") != std::string::npos);
  BOOST_TEST(refused({{"target_modules", {"q_proj", 3}}}) ==
             "a/adapter_config.json: target_modules must be a list of strings");
  BOOST_TEST(error_of([] { (void)dtune::parse_adapter_config(json::array(), "a/adapter_config.json"); }) ==
             "a/adapter_config.json: expected a JSON object");
}
