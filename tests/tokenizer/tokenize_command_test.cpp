// `dtune tokenize` end to end: runs DTUNE_BINARY on the fixture corpus and compares with the
// ids and decodes that PyPI `tokenizers` gives (exact); checks the stdin:LINE error message and
// the usage errors.
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

const std::string kData = DTUNE_TEST_DATA;
const std::filesystem::path kTmp = std::filesystem::temp_directory_path() / "dtune_tokenize_command_test";

std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `dtune tokenize <args> < in > out 2> err`; returns the exit status.
int run_cli(const std::string& args, const std::filesystem::path& in, const std::filesystem::path& out) {
  const std::string cmd = std::string("'") + DTUNE_BINARY + "' tokenize " + args + " < '" + in.string() + "' > '" +
                          out.string() + "' 2> '" + (kTmp / "stderr.txt").string() + "'";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(encode_and_decode_match_tokenizers) {
  std::filesystem::create_directories(kTmp);
  const auto corpus = std::filesystem::path(kData) / "tokenizer" / "corpus.jsonl";
  const auto expected = read_jsonl(std::filesystem::path(kData) / "tokenizer" / "llama3_1.expected.jsonl");
  const std::string tok = "--tokenizer '" + kData + "/tokenizers/llama3_1' ";
  for (const bool special : {false, true}) {
    BOOST_REQUIRE_EQUAL(run_cli(tok + (special ? "--add-special-tokens" : "") + " --threads 2 --batch-lines 7",
                                corpus, kTmp / "ids.jsonl"), 0);
    const auto got = read_jsonl(kTmp / "ids.jsonl");
    BOOST_REQUIRE_EQUAL(got.size(), expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      BOOST_CHECK_MESSAGE(got[i]["ids"] == expected[i][special ? "ids_special" : "ids"], "line " << i + 1);
    }
  }
  // Decode the ids just written (with BOS) and compare with tokenizers' decode.
  BOOST_REQUIRE_EQUAL(run_cli(tok + "--decode --threads 2", kTmp / "ids.jsonl", kTmp / "text.jsonl"), 0);
  const auto text = read_jsonl(kTmp / "text.jsonl");
  BOOST_REQUIRE_EQUAL(text.size(), expected.size());
  for (std::size_t i = 0; i < text.size(); ++i) BOOST_CHECK_EQUAL(text[i]["text"], expected[i]["decode"]);
  BOOST_REQUIRE_EQUAL(run_cli(tok + "--decode --skip-special-tokens", kTmp / "ids.jsonl", kTmp / "text.jsonl"), 0);
  const auto skipped = read_jsonl(kTmp / "text.jsonl");
  for (std::size_t i = 0; i < skipped.size(); ++i) BOOST_CHECK_EQUAL(skipped[i]["text"], expected[i]["decode_skip"]);
}

BOOST_AUTO_TEST_CASE(malformed_lines_name_the_line) {
  std::filesystem::create_directories(kTmp);
  const std::string tok = "--tokenizer '" + kData + "/tokenizers/qwen3' ";
  std::ofstream(kTmp / "bad.jsonl") << "{\"text\": \"fine\"}\n{\"text\": \"fine\"}\n{\"txt\": 1}\n";
  BOOST_CHECK_EQUAL(run_cli(tok, kTmp / "bad.jsonl", kTmp / "out.jsonl"), 1);
  BOOST_CHECK(slurp(kTmp / "stderr.txt").find("stdin:3") != std::string::npos);
  BOOST_CHECK_EQUAL(slurp(kTmp / "out.jsonl"), "{\"ids\":[62057]}\n{\"ids\":[62057]}\n");  // lines before it

  std::ofstream(kTmp / "bad2.jsonl") << "{\"text\": \"a\"}\nnot json\n";
  BOOST_CHECK_EQUAL(run_cli(tok, kTmp / "bad2.jsonl", kTmp / "out.jsonl"), 1);
  BOOST_CHECK(slurp(kTmp / "stderr.txt").find("stdin:2: not a JSON object") != std::string::npos);

  std::ofstream(kTmp / "bad3.jsonl") << "{\"ids\": [1, 2]}\n{\"ids\": [1, 99999999]}\n";
  BOOST_CHECK_EQUAL(run_cli(tok + "--decode", kTmp / "bad3.jsonl", kTmp / "out.jsonl"), 1);
  BOOST_CHECK(slurp(kTmp / "stderr.txt").find("stdin:2: ids[1]") != std::string::npos);

  BOOST_CHECK_EQUAL(run_cli("--tokenizer /nonexistent/tok.json", kTmp / "bad.jsonl", kTmp / "out.jsonl"), 1);
  BOOST_CHECK(slurp(kTmp / "stderr.txt").find("/nonexistent/tok.json") != std::string::npos);
}

// Usage errors (src/cli/command_line.cpp): exit 2, stderr names the option and then shows the
// usage, stdout stays empty; --help goes to stdout with exit 0.
BOOST_AUTO_TEST_CASE(usage_errors_exit_2_and_name_the_option) {
  std::filesystem::create_directories(kTmp);
  std::ofstream(kTmp / "empty.jsonl");
  const auto in = kTmp / "empty.jsonl", out = kTmp / "out.jsonl";
  BOOST_CHECK_EQUAL(run_cli("--tokenizer x --no-such-option 3", in, out), 2);
  const std::string err = slurp(kTmp / "stderr.txt");
  BOOST_CHECK(err.rfind("dtune tokenize: unrecognised option '--no-such-option'\n\n", 0) == 0);
  BOOST_CHECK(err.find("--batch-lines") != std::string::npos);
  BOOST_CHECK_EQUAL(slurp(out), "");
  BOOST_CHECK_EQUAL(run_cli("--threads 2", in, out), 2);
  BOOST_CHECK(slurp(kTmp / "stderr.txt").find("the option '--tokenizer' is required") != std::string::npos);
  BOOST_CHECK_EQUAL(run_cli("--help", in, out), 0);
  BOOST_CHECK(slurp(out).find("--batch-lines") != std::string::npos);
  BOOST_CHECK_EQUAL(slurp(kTmp / "stderr.txt"), "");
}
