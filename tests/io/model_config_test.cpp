// Tests load_model_config: transformers-written configs (oracle: AutoConfig), the v4 rope_scaling
// spellings, Qwen2 bias semantics, eos merging, and errors that name config.json and the key.
#include "dtune/io/model_config.h"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "io_test_util.h"

namespace dtune {
namespace {

using nlohmann::json;

json base_llama() {
  return json{{"model_type", "llama"},         {"vocab_size", 1000},         {"hidden_size", 128},
              {"intermediate_size", 256},      {"num_hidden_layers", 2},     {"num_attention_heads", 8},
              {"num_key_value_heads", 2},      {"max_position_embeddings", 4096}, {"rms_norm_eps", 1e-5},
              {"rope_theta", 500000.0},        {"tie_word_embeddings", false}, {"eos_token_id", 2}};
}

ModelConfig load_json(const test::TempDir& dir, const json& j) {
  test::write_file(dir / "config.json", j.dump());
  return load_model_config(dir.path());
}

// Expects load_model_config to throw an Error whose message contains every piece.
void expect_error(const json& j, const std::vector<std::string>& pieces) {
  test::TempDir dir;
  try {
    load_json(dir, j);
    BOOST_FAIL("expected an Error for " << j.dump());
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : pieces) BOOST_CHECK_MESSAGE(msg.find(p) != std::string::npos, msg << " lacks " << p);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(model_config)

// Every field dtune reads equals what transformers reads from the same (v5-written) folder.
BOOST_AUTO_TEST_CASE(matches_transformers_autoconfig) {
  test::TempDir dir;
  const json oracle = json::parse(test::run_python("tests/io/oracles/config_oracle.py '" + dir.path() + "'"));
  BOOST_REQUIRE_EQUAL(oracle.size(), 3u);
  for (const auto& [variant, want] : oracle.items()) {
    BOOST_TEST_CONTEXT(variant) {
      const ModelConfig c = load_model_config(dir / variant);
      BOOST_TEST(c.model_type == want["model_type"].get<std::string>());
      BOOST_TEST(c.vocab_size == want["vocab_size"].get<int64_t>());
      BOOST_TEST(c.hidden_size == want["hidden_size"].get<int64_t>());
      BOOST_TEST(c.intermediate_size == want["intermediate_size"].get<int64_t>());
      BOOST_TEST(c.num_hidden_layers == want["num_hidden_layers"].get<int64_t>());
      BOOST_TEST(c.num_attention_heads == want["num_attention_heads"].get<int64_t>());
      BOOST_TEST(c.num_key_value_heads == want["num_key_value_heads"].get<int64_t>());
      BOOST_TEST(c.head_dim == want["head_dim"].get<int64_t>());
      BOOST_TEST(c.max_position_embeddings == want["max_position_embeddings"].get<int64_t>());
      BOOST_TEST(c.rms_norm_eps == want["rms_norm_eps"].get<double>());
      BOOST_TEST(c.rope_theta == want["rope_theta"].get<double>());
      BOOST_TEST(c.rope_scaling.type == want["rope_type"].get<std::string>());
      BOOST_TEST(c.rope_scaling.factor == want["factor"].get<double>());
      BOOST_TEST(c.rope_scaling.low_freq_factor == want["low_freq_factor"].get<double>());
      BOOST_TEST(c.rope_scaling.high_freq_factor == want["high_freq_factor"].get<double>());
      BOOST_TEST(c.rope_scaling.original_max_position_embeddings ==
                 want["original_max_position_embeddings"].get<int64_t>());
      BOOST_TEST(c.tie_word_embeddings == want["tie_word_embeddings"].get<bool>());
      BOOST_TEST(c.eos_token_ids == want["eos_token_ids"].get<std::vector<int32_t>>(), boost::test_tools::per_element());
      BOOST_TEST(c.attention_bias == want["attention_bias"].get<bool>());
      BOOST_TEST(c.mlp_bias == want["mlp_bias"].get<bool>());
    }
  }
}

// transformers v4 wrote rope_scaling with "type" (older) or "rope_type" (newer), theta top-level.
BOOST_AUTO_TEST_CASE(llama3_rope_scaling_all_spellings) {
  const json scaling = {{"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                        {"original_max_position_embeddings", 8192}};
  for (const char* kind : {"type", "rope_type", "rope_parameters"}) {
    BOOST_TEST_CONTEXT(kind) {
      json j = base_llama();
      json s = scaling;
      if (std::string(kind) == "rope_parameters") {
        j.erase("rope_theta");
        s["rope_type"] = "llama3";
        s["rope_theta"] = 500000.0;
        j["rope_parameters"] = s;
      } else {
        s[kind] = "llama3";
        j["rope_scaling"] = s;
      }
      test::TempDir dir;
      const ModelConfig c = load_json(dir, j);
      BOOST_TEST(c.rope_scaling.type == "llama3");
      BOOST_TEST(c.rope_scaling.factor == 8.0);
      BOOST_TEST(c.rope_scaling.low_freq_factor == 1.0);
      BOOST_TEST(c.rope_scaling.high_freq_factor == 4.0);
      BOOST_TEST(c.rope_scaling.original_max_position_embeddings == 8192);
      BOOST_TEST(c.rope_theta == 500000.0);
    }
  }
}

BOOST_AUTO_TEST_CASE(qwen2_has_qkv_bias_and_defaults) {
  json j = base_llama();
  j["model_type"] = "qwen2";
  j.erase("num_key_value_heads");
  j["rope_scaling"] = nullptr;
  j["eos_token_id"] = json::array({151643, 151645});
  j["vocab_size"] = 151936;
  test::TempDir dir;
  const ModelConfig c = load_json(dir, j);
  BOOST_TEST(c.attention_bias);  // q/k/v biases, no o_proj bias
  BOOST_TEST(!c.mlp_bias);
  BOOST_TEST(c.num_key_value_heads == 8);  // absent -> num_attention_heads
  BOOST_TEST(c.head_dim == 16);            // absent -> hidden / heads
  BOOST_TEST(c.rope_scaling.type == "default");
  BOOST_TEST((c.eos_token_ids == std::vector<int32_t>{151643, 151645}));
}

BOOST_AUTO_TEST_CASE(errors_name_file_and_key) {
  json j = base_llama();
  j.erase("hidden_size");
  expect_error(j, {"config.json", "hidden_size"});
  j = base_llama();
  j["model_type"] = "mistral";
  expect_error(j, {"config.json", "model_type", "mistral"});
  j = base_llama();
  j["num_key_value_heads"] = 3;
  expect_error(j, {"config.json", "num_key_value_heads"});
  j = base_llama();
  j["vocab_size"] = "1000";
  expect_error(j, {"config.json", "vocab_size", "integer"});
  j = base_llama();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_error(j, {"config.json", "rope_scaling", "yarn"});
  j = base_llama();
  j["rope_scaling"] = {{"type", "llama3"}, {"factor", 8.0}};
  expect_error(j, {"config.json", "low_freq_factor"});
  j = base_llama();
  j["eos_token_id"] = 5000;
  expect_error(j, {"config.json", "eos"});
  test::TempDir dir;
  test::write_file(dir / "config.json", "{\"model_type\": ");
  BOOST_CHECK_EXCEPTION(load_model_config(dir.path()), Error, [](const Error& e) {
    return std::string(e.what()).find("config.json is not valid JSON") != std::string::npos;
  });
  BOOST_CHECK_EXCEPTION(load_model_config(dir / "missing"), Error, [](const Error& e) {
    return std::string(e.what()).find("config.json not found") != std::string::npos;
  });
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace dtune
