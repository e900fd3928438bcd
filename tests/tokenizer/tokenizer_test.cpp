// Tokenizer against PyPI `tokenizers` 0.23.3: exact ids for every corpus line of
// tests/fixtures/tokenizer/corpus.jsonl with and without add_special_tokens, decodes (tolerance:
// none, byte-exact), special-token ids, and errors for bad files.
#include "dtune/tokenizer/tokenizer.h"

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"

namespace {

const std::string kData = DTUNE_TEST_DATA;

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << path << " (run scripts/gen_tokenizer_fixtures.py)");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Loads each tokenizer once per test process (a load takes ~1 s).
const dtune::Tokenizer& cached(const std::string& name) {
  static std::map<std::string, dtune::Tokenizer> loaded;
  auto it = loaded.find(name);
  if (it == loaded.end()) it = loaded.emplace(name, dtune::Tokenizer::load(kData + "/tokenizers/" + name)).first;
  return it->second;
}

// Compares every corpus line; reports the first few mismatches with the text.
void check_tokenizer(const std::string& name) {
  const auto& tok = cached(name);
  const auto corpus = read_jsonl(kData + "/tokenizer/corpus.jsonl");
  const auto expected = read_jsonl(kData + "/tokenizer/" + name + ".expected.jsonl");
  BOOST_REQUIRE_EQUAL(corpus.size(), expected.size());
  BOOST_REQUIRE_GE(corpus.size(), 150u);
  int failures = 0;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    const std::string text = corpus[i]["text"];
    const auto& e = expected[i];
    const auto ids = tok.encode(text, false);
    const auto ids_special = tok.encode(text, true);
    const bool ok = ids == e["ids"].get<std::vector<int32_t>>() &&
                    ids_special == e["ids_special"].get<std::vector<int32_t>>();
    if (!ok && ++failures <= 5) {
      BOOST_ERROR(name << " line " << i + 1 << " ids differ for " << nlohmann::json(text).dump()
                       << "\n  got      " << nlohmann::json(ids_special).dump() << "\n  expected "
                       << e["ids_special"].dump());
    }
    const auto ref_ids = e["ids_special"].get<std::vector<int32_t>>();
    BOOST_CHECK_EQUAL(tok.decode(ref_ids, false), e["decode"].get<std::string>());
    BOOST_CHECK_EQUAL(tok.decode(ref_ids, true), e["decode_skip"].get<std::string>());
    std::vector<int32_t> odd;
    for (std::size_t k = 0; k < ref_ids.size(); k += 2) odd.push_back(ref_ids[k]);
    BOOST_CHECK_EQUAL(tok.decode(odd, false), e["decode_odd"].get<std::string>());
  }
  BOOST_CHECK_EQUAL(failures, 0);
}

std::string write_temp(const std::string& name, const std::string& content) {
  const auto dir = std::filesystem::temp_directory_path() / "dtune_tokenizer_test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / name).string();
  std::ofstream(path) << content;
  return path;
}

// Checks that loading path throws dtune::Error whose message contains every piece.
void check_load_error(const std::string& path, const std::vector<std::string>& pieces) {
  try {
    dtune::Tokenizer::load(path);
    BOOST_ERROR("loading " << path << " did not throw");
  } catch (const dtune::Error& e) {
    const std::string msg = e.what();
    for (const auto& p : pieces) BOOST_CHECK_MESSAGE(msg.find(p) != std::string::npos, "'" << p << "' not in: " << msg);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(llama3_1_ids_match_tokenizers) { check_tokenizer("llama3_1"); }
BOOST_AUTO_TEST_CASE(deepseek_v3_ids_match_tokenizers) { check_tokenizer("deepseek_v3"); }
BOOST_AUTO_TEST_CASE(qwen3_ids_match_tokenizers) { check_tokenizer("qwen3"); }

BOOST_AUTO_TEST_CASE(special_token_ids_from_config) {
  const auto llama = dtune::Tokenizer::load(kData + "/tokenizers/llama3_1/tokenizer.json");
  BOOST_CHECK_EQUAL(llama.vocab_size(), 128256);
  BOOST_CHECK(llama.bos_id() == 128000);  // <|begin_of_text|>
  BOOST_CHECK(llama.eos_id() == 128009);  // <|eot_id|>
  BOOST_CHECK(!llama.pad_id());
  BOOST_CHECK(llama.token_to_id("Hello") == 9906);
  BOOST_CHECK(!llama.token_to_id("no such token here"));
  BOOST_CHECK_EQUAL(llama.sha256(), "e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7");

  const auto deepseek = dtune::Tokenizer::load(kData + "/tokenizers/deepseek_v3");
  BOOST_CHECK(deepseek.bos_id() == 0);  // {"content": "<｜begin▁of▁sentence｜>"}
  BOOST_CHECK(deepseek.eos_id() == 1);
  BOOST_CHECK(deepseek.pad_id() == 1);
  BOOST_CHECK_EQUAL(deepseek.vocab_size(), 128815);

  const auto qwen = dtune::Tokenizer::load(kData + "/tokenizers/qwen3");
  BOOST_CHECK(!qwen.bos_id());
  BOOST_CHECK(qwen.eos_id() == 151645);  // <|im_end|>
  BOOST_CHECK(qwen.pad_id() == 151643);  // <|endoftext|>
  BOOST_CHECK_EQUAL(qwen.vocab_size(), 151669);
}

BOOST_AUTO_TEST_CASE(invalid_utf8_text_is_an_error) {
  const auto& qwen = cached("qwen3");
  BOOST_CHECK_THROW(qwen.encode("ab\xff", false), dtune::Error);
  BOOST_CHECK_EQUAL(qwen.decode(std::vector<int32_t>{-1, 999999999}, false), "");  // unknown ids skipped
}

BOOST_AUTO_TEST_CASE(bad_files_give_errors_naming_the_file) {
  check_load_error("/nonexistent/dir/tokenizer.json", {"/nonexistent/dir/tokenizer.json", "cannot open"});
  const auto bad_json = write_temp("malformed.json", "{\"model\": {\"type\": \"BPE\", ");
  check_load_error(bad_json, {bad_json, "malformed JSON"});
  const auto wordpiece = write_temp(
      "wordpiece.json", R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}, "pre_tokenizer": null})");
  check_load_error(wordpiece, {wordpiece, "model.type \"WordPiece\""});
  const auto bad_pre = write_temp(
      "bad_pre.json",
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, {"type": "ByteLevel"}]}})");
  check_load_error(bad_pre, {bad_pre, "pre_tokenizer.pretokenizers[0].type \"Whitespace\""});
  const auto no_byte_level = write_temp(
      "no_byte_level.json",
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": null})");
  check_load_error(no_byte_level, {no_byte_level, "byte-level"});
  const auto bad_merge = write_temp(
      "bad_merge.json",
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}})");
  check_load_error(bad_merge, {bad_merge, "model.merges[0]"});
  const auto bad_regex = write_temp(
      "bad_regex.json",
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
             {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}, {"type": "ByteLevel"}]}})");
  check_load_error(bad_regex, {bad_regex, "pre_tokenizer.pretokenizers[0].pattern.Regex"});
  const auto bad_decoder = write_temp(
      "bad_decoder.json",
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"},
          "decoder": {"type": "WordPiece"}})");
  check_load_error(bad_decoder, {bad_decoder, "decoder.type \"WordPiece\""});
}

// Added-token ids as `tokenizers` 0.23 (and transformers) assign them, whatever the file declares:
// a gap closes, an id that is already a vocabulary token's is not used, out-of-order ids follow
// file order, a content that is a vocabulary token takes its id, a repeated content keeps its
// first id (fixture from scripts/gen_added_token_fixtures.py; tolerance 0: ids are exact).
BOOST_AUTO_TEST_CASE(added_token_ids_follow_tokenizers_rules) {
  const std::string root = DTUNE_SOURCE_DIR;
  std::ifstream in(kData + "/tokenizer/added_token_ids.json");
  BOOST_REQUIRE(in);
  const nlohmann::json fx = nlohmann::json::parse(in);
  std::ifstream base_in(root + "/" + fx["base"].get<std::string>());
  const nlohmann::json base = nlohmann::json::parse(base_in);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "dtune_added_token_ids";
  std::filesystem::create_directories(dir);
  const std::string text = fx["text"];
  BOOST_TEST(fx["variants"].size() >= 7u);
  for (const auto& v : fx["variants"]) {
    BOOST_TEST_CONTEXT(v["name"].get<std::string>()) {
      nlohmann::json j = base;
      for (const auto& a : v["added"])
        j["added_tokens"].push_back({{"id", a[1]}, {"content", a[0]}, {"single_word", false}, {"lstrip", false},
                                     {"rstrip", false}, {"normalized", false}, {"special", a[2]}});
      const std::string file = (dir / (v["name"].get<std::string>() + ".json")).string();
      std::ofstream(file) << j.dump();
      const dtune::Tokenizer tok = dtune::Tokenizer::load(file);
      BOOST_TEST(tok.encode(text, false) == v["ids"].get<std::vector<int32_t>>(), boost::test_tools::per_element());
      for (const auto& [content, id] : v["token_ids"].items()) BOOST_TEST(*tok.token_to_id(content) == id.get<int32_t>(), content);
      BOOST_TEST(tok.vocab_size() == v["vocab_size"].get<int32_t>());
      BOOST_TEST(tok.decode(v["ids"].get<std::vector<int32_t>>(), true) == v["decoded"].get<std::string>());
    }
  }
  std::filesystem::remove_all(dir);
}
