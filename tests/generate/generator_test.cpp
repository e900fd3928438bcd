// Tests src/generate/generator.cpp: greedy and seeded-sampled generation on SmolLM2-135M equal
// transformers' generate() token for token (oracle: `scripts/generate_oracle.py generate`, run
// by the ctest fixture generate_oracle into the build folder), single and batched, with and
// without a random non-zero PEFT adapter; UTF-8-safe streaming; errors.
#include "dtune/generate/generator.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/io/peft_adapter.h"
#include "dtune/model/decoder.h"
#include "dtune/tokenizer/tokenizer.h"

namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

const std::string kModelDir = std::string(DTUNE_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct";
const std::string kOracleDir = DTUNE_GENERATE_ORACLE_DIR;

const json& oracle() {
  static const json j = [] {
    std::ifstream in(kOracleDir + "/greedy.json");
    BOOST_REQUIRE_MESSAGE(in, "missing " + kOracleDir + "/greedy.json: run ctest (its generate_oracle "
                              "fixture writes it) after scripts/make_default_model.py");
    return json::parse(in);
  }();
  return j;
}

dtune::Decoder load_model() {
  BOOST_REQUIRE_MESSAGE(std::ifstream(kModelDir + "/config.json").good(),
                        "missing " + kModelDir + ": run scripts/make_default_model.py");
  dtune::Decoder d = dtune::Decoder::load(kModelDir);
  return d;
}

dtune::Decoder& base_model() {
  static dtune::Decoder d = load_model();
  return d;
}

dtune::Decoder& lora_model() {
  static dtune::Decoder d = [] {
    dtune::Decoder m = load_model();
    dtune::load_adapter_into(m, kOracleDir + "/adapter");
    return m;
  }();
  return d;
}

const dtune::Tokenizer& tokenizer() {
  static const dtune::Tokenizer t = dtune::Tokenizer::load(kModelDir);
  return t;
}

std::vector<Ids> prompt_ids() {
  std::vector<Ids> out;
  for (const auto& p : oracle()["prompts"]) out.push_back(tokenizer().encode(p.get<std::string>(), true));
  return out;
}

// transformers pads a finished row with pad_token_id (= EOS for SmolLM2): keep up to the first
// EOS, inclusive, as dtune stops there.
Ids until_eos(Ids ids, const dtune::ModelConfig& config) {
  for (size_t i = 0; i < ids.size(); ++i)
    for (int32_t eos : config.eos_token_ids)
      if (ids[i] == eos) {
        ids.resize(i + 1);
        return ids;
      }
  return ids;
}

dtune::GenerateOptions greedy() {
  dtune::GenerateOptions o;
  o.max_new_tokens = oracle()["new_tokens"].get<int64_t>();
  o.sampling.temperature = 0;
  o.sampling.repetition_penalty = 1.0;
  return o;
}

// Token-for-token equality; fp32 on CPU, where dtune and transformers differ by float rounding
// only (~1e-5 in logits), far below the margins of these greedy choices.
void check_equal(dtune::Decoder& model, const json& want, const std::vector<Ids>& prompts,
                 const dtune::GenerateOptions& options, bool batched) {
  std::vector<Ids> got;
  if (batched) {
    got = dtune::generate_ids(model, prompts, options);
  } else {
    for (const auto& p : prompts) got.push_back(dtune::generate_ids(model, {p}, options)[0]);
  }
  BOOST_REQUIRE_EQUAL(got.size(), prompts.size());
  for (size_t r = 0; r < got.size(); ++r) {
    const Ids expected = until_eos(want[r].get<Ids>(), model.config());
    BOOST_TEST_INFO("row " << r << (batched ? " batched" : " single"));
    BOOST_TEST(got[r] == expected, boost::test_tools::per_element());
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(prompt_ids_match_transformers_tokenizer) {
  const auto ids = prompt_ids();
  for (size_t r = 0; r < ids.size(); ++r) BOOST_TEST(ids[r] == oracle()["prompt_ids"][r].get<Ids>());
}

// A prompt whose greedy or sampled reference stops by EOS after a few tokens checks little of the
// decode. The floor lets "The capital of France is" through (29 new tokens, then EOS); the other
// prompts run all 64.
BOOST_AUTO_TEST_CASE(references_are_long_enough_to_check_the_decode) {
  constexpr size_t kMinNewTokens = 24;
  const auto& config = base_model().config();
  for (const char* run : {"base", "lora"})
    for (const char* mode : {"single", "batch"})
      for (size_t r = 0; r < oracle()[run][mode].size(); ++r) {
        BOOST_TEST_INFO(run << " " << mode << " row " << r
                            << ": replace that prompt in scripts/generate_oracle.py");
        BOOST_TEST(until_eos(oracle()[run][mode][r].get<Ids>(), config).size() >= kMinNewTokens);
      }
  for (const auto& row : oracle()["penalty"]["single"])
    BOOST_TEST(until_eos(row.get<Ids>(), config).size() >= kMinNewTokens);
  for (const auto& [seed, row] : oracle()["sampled"]["seeds"].items()) {
    BOOST_TEST_INFO("sampled seed " << seed << ": pick another prompt or seed in scripts/generate_oracle.py");
    BOOST_TEST(until_eos(row.get<Ids>(), config).size() >= kMinNewTokens);
  }
}

BOOST_AUTO_TEST_CASE(greedy_single_equals_transformers) {
  check_equal(base_model(), oracle()["base"]["single"], prompt_ids(), greedy(), false);
}

BOOST_AUTO_TEST_CASE(greedy_batch_equals_transformers) {
  check_equal(base_model(), oracle()["base"]["batch"], prompt_ids(), greedy(), true);
}

BOOST_AUTO_TEST_CASE(greedy_with_adapter_equals_peft) {
  check_equal(lora_model(), oracle()["lora"]["single"], prompt_ids(), greedy(), false);
  check_equal(lora_model(), oracle()["lora"]["batch"], prompt_ids(), greedy(), true);
}

BOOST_AUTO_TEST_CASE(greedy_with_repetition_penalty_equals_transformers) {
  dtune::GenerateOptions o = greedy();
  o.sampling.repetition_penalty = oracle()["penalty"]["repetition_penalty"].get<double>();
  auto prompts = prompt_ids();
  prompts.resize(oracle()["penalty"]["single"].size());
  check_equal(base_model(), oracle()["penalty"]["single"], prompts, o, false);
}

// The oracle's sampling knobs (temperature, top_p, top_k, repetition_penalty) on greedy()'s rest.
static dtune::GenerateOptions sampled_options(const json& s) {
  dtune::GenerateOptions o = greedy();
  o.sampling.temperature = s["temperature"].get<double>();
  o.sampling.top_p = s["top_p"].get<double>();
  o.sampling.top_k = s["top_k"].get<int64_t>();
  o.sampling.repetition_penalty = s["repetition_penalty"].get<double>();
  return o;
}

// Same seed, same processors: transformers draws with torch.multinomial from the CPU generator
// that torch.manual_seed(seed) seeds, dtune from a CPU generator seeded alike.
BOOST_AUTO_TEST_CASE(seeded_sampling_equals_transformers) {
  const json& s = oracle()["sampled"];
  dtune::GenerateOptions o = sampled_options(s);
  for (const auto& [seed, want] : s["seeds"].items()) {
    o.sampling.seed = std::stoull(seed);
    check_equal(base_model(), json::array({want}), {prompt_ids()[s["prompt"].get<size_t>()]}, o, false);
  }
}

// train.deterministic turns libtorch's deterministic algorithms on for the whole run, and the
// generation test runs at its end: sampling (top-p's cumsum, the penalty's scatter) must run
// under it and give the same tokens. (On CUDA libtorch refuses cumsum in this mode; the
// processors run on the host, which bench/gpu.sh's deterministic smoke run checks on a GPU.)
BOOST_AUTO_TEST_CASE(seeded_sampling_under_deterministic_algorithms_equals_transformers) {
  struct DeterministicScope {
    bool before = at::globalContext().deterministicAlgorithms();
    bool warn_before = at::globalContext().deterministicAlgorithmsWarnOnly();
    DeterministicScope() { at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false); }
    ~DeterministicScope() { at::globalContext().setDeterministicAlgorithms(before, warn_before); }
  } scope;
  const json& s = oracle()["sampled"];
  dtune::GenerateOptions o = sampled_options(s);
  BOOST_REQUIRE(o.sampling.top_p < 1.0 && o.sampling.repetition_penalty != 1.0);  // both processors run
  const auto& [seed, want] = *s["seeds"].items().begin();
  o.sampling.seed = std::stoull(seed);
  check_equal(base_model(), json::array({want}), {prompt_ids()[s["prompt"].get<size_t>()]}, o, false);
}

BOOST_AUTO_TEST_CASE(streamed_text_is_whole_characters_and_equals_decode) {
  const std::string text = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x99\x82\xf0\x9f\x8e\x89 ok";
  const Ids ids = tokenizer().encode(text, false);
  dtune::TextStreamer streamer(tokenizer());
  std::string joined;
  int pieces_held = 0;
  for (int32_t id : ids) {
    const std::string piece = streamer.push(id);
    if (piece.empty()) ++pieces_held;
    BOOST_TEST(piece.find("\xef\xbf\xbd") == std::string::npos);  // no U+FFFD mid-character
    joined += piece;
  }
  joined += streamer.finish();
  BOOST_TEST(joined == text);
  BOOST_TEST(pieces_held > 0);  // the emoji/CJK bytes do span several tokens
}

BOOST_AUTO_TEST_CASE(generate_text_streams_what_it_returns) {
  dtune::GenerateOptions o = greedy();
  o.max_new_tokens = 12;
  std::string streamed;
  dtune::GenerateStats stats;
  const std::string text = dtune::generate_text(base_model(), tokenizer(), "The capital of France is", o,
                                                [&](std::string_view p) { streamed += p; }, &stats);
  Ids want = until_eos(oracle()["base"]["single"][0].get<Ids>(), base_model().config());
  want.resize(std::min<size_t>(want.size(), 12));
  if (!want.empty() && want.back() == base_model().config().eos_token_ids.front()) want.pop_back();
  BOOST_TEST(streamed == text);
  BOOST_TEST(text == tokenizer().decode(want, true));
  BOOST_TEST(stats.new_tokens == 12);
  BOOST_TEST(stats.decode_steps == 11);
  BOOST_TEST(stats.prompt_tokens == 5);
}

BOOST_AUTO_TEST_CASE(errors_name_the_problem) {
  const int64_t context = base_model().config().max_position_embeddings;
  dtune::GenerateOptions o = greedy();
  BOOST_CHECK_EXCEPTION(dtune::generate_ids(base_model(), {Ids(context, 100)}, o), dtune::Error,
                        [](const dtune::Error& e) {
                          return std::string(e.what()).find("max_position_embeddings") != std::string::npos;
                        });
  BOOST_CHECK_THROW(dtune::generate_ids(base_model(), {Ids{}}, o), dtune::Error);
  BOOST_CHECK_THROW(dtune::generate_ids(base_model(), {Ids{1 << 30}}, o), dtune::Error);
  o.max_new_tokens = 0;
  BOOST_CHECK_THROW(dtune::generate_ids(base_model(), {Ids{1}}, o), dtune::Error);

  // An adapter for another model: q_proj A with in_features 64 instead of 576.
  // POSIX calls, not std::filesystem::remove_all: libtorch.so exports its own copy of that
  // symbol, which crashes when it binds in place of libstdc++'s.
  std::string parent = "/tmp/dtune_generate_test_XXXXXX";
  BOOST_REQUIRE(mkdtemp(parent.data()) != nullptr);
  const std::string dir = parent + "/adapter";
  dtune::AdapterConfig config;
  config.r = 2;
  config.alpha = 4;
  config.target_modules = {"q_proj"};
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (int layer = 0; layer < base_model().config().num_hidden_layers; ++layer) {
    const std::string key = "base_model.model.model.layers." + std::to_string(layer) + ".self_attn.q_proj";
    tensors.emplace_back(key + ".lora_A.weight", at::zeros({2, 64}));
    tensors.emplace_back(key + ".lora_B.weight", at::zeros({576, 2}));
  }
  dtune::save_peft_adapter(dir, config, tensors);
  dtune::Decoder fresh = load_model();
  BOOST_CHECK_EXCEPTION(dtune::load_adapter_into(fresh, dir), dtune::Error, [&](const dtune::Error& e) {
    return std::string(e.what()).find("does not fit") != std::string::npos &&
           std::string(e.what()).find(dir) != std::string::npos;
  });
  for (const char* f : {"/adapter_config.json", "/adapter_model.safetensors"}) std::remove((dir + f).c_str());
  rmdir(dir.c_str());
  rmdir(parent.c_str());
}

// Knob resolution as transformers' generate(): an unset knob takes generation_config.json's value,
// else transformers' default (top_k 50, 20 new tokens ...). Seeded, token-equal to the oracle for
// the recipe's call (top_k not given), for a folder whose generation_config.json sets do_sample,
// temperature, top_p and max_new_tokens (nothing given), and with every knob given (the file
// loses). fp32 on CPU as above.
BOOST_AUTO_TEST_CASE(unset_knobs_resolve_as_transformers) {
  const json& cases = oracle()["resolved"];
  BOOST_REQUIRE_EQUAL(cases.size(), 3u);
  dtune::Decoder folder_model = dtune::Decoder::load(kOracleDir + "/gen_model");
  BOOST_REQUIRE(folder_model.config().generation.temperature == 0.8);  // the folder's own knobs
  BOOST_REQUIRE(folder_model.config().generation.top_p == 0.9);
  for (const auto& [name, c] : cases.items()) {
    dtune::GenerateOptions o = dtune::GenerateOptions::unset();
    const json& k = c["knobs"];
    if (k.contains("max_new_tokens")) o.max_new_tokens = k["max_new_tokens"].get<int64_t>();
    if (k.contains("do_sample")) o.sampling.do_sample = k["do_sample"].get<bool>();
    if (k.contains("temperature")) o.sampling.temperature = k["temperature"].get<double>();
    if (k.contains("top_p")) o.sampling.top_p = k["top_p"].get<double>();
    if (k.contains("top_k")) o.sampling.top_k = k["top_k"].get<int64_t>();
    if (k.contains("repetition_penalty")) o.sampling.repetition_penalty = k["repetition_penalty"].get<double>();
    o.sampling.seed = c["seed"].get<uint64_t>();
    dtune::Decoder& model = c["model"] == "base" ? base_model() : folder_model;
    BOOST_TEST_INFO("case " << name);
    const Ids want = c["ids"].get<Ids>();
    BOOST_TEST(want.size() >= 20u);  // a sampled run that ends at once checks little
    check_equal(model, json::array({want}), {prompt_ids()[oracle()["sampled"]["prompt"].get<size_t>()]}, o, false);
  }
}

// The resolution itself, value by value and source by source.
BOOST_AUTO_TEST_CASE(resolution_order_is_given_then_file_then_library) {
  dtune::GenerationConfig file;
  file.file = "m/generation_config.json";
  file.temperature = 0.8;
  file.top_k = 20;
  file.max_length = 100;
  dtune::GenerateOptions given = dtune::GenerateOptions::unset();
  given.sampling.top_k = 5;
  auto r = dtune::resolve_generate_options(given, file);
  BOOST_TEST(*r.options.sampling.top_k == 5);
  BOOST_TEST(*r.options.sampling.temperature == 0.8);
  BOOST_TEST(*r.options.sampling.top_p == 1.0);
  BOOST_TEST(*r.options.sampling.do_sample == false);
  BOOST_TEST(*r.options.sampling.repetition_penalty == 1.0);
  BOOST_TEST(!r.options.max_new_tokens.has_value());
  BOOST_TEST(*r.options.max_length == 100);
  const std::string all = [&] { std::string s; for (auto& l : r.lines) s += l + "\n"; return s; }();
  BOOST_TEST(all.find("top_k = 5 (--top-k)") != std::string::npos, all);
  BOOST_TEST(all.find("temperature = 0.8 (m/generation_config.json)") != std::string::npos, all);
  BOOST_TEST(all.find("top_p = 1 (transformers' default)") != std::string::npos, all);
  // Without any length: transformers' max_length 20 counted as new tokens.
  r = dtune::resolve_generate_options(dtune::GenerateOptions::unset(), {});
  BOOST_TEST(*r.options.max_new_tokens == 20);
  BOOST_TEST(*r.options.sampling.top_k == 50);
  // A bad value from the file names the file.
  file.top_p = 1.5;
  BOOST_CHECK_EXCEPTION(dtune::resolve_generate_options(dtune::GenerateOptions::unset(), file), dtune::Error,
                        [](const dtune::Error& e) {
                          return std::string(e.what()).find("m/generation_config.json") != std::string::npos;
                        });
}
