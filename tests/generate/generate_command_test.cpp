// Tests src/cli/generate_command.cpp end to end through the dtune binary: stdout holds exactly
// the generated text (equal to transformers' greedy tokens, decoded), JSONL mode, usage errors.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "dtune/core/option_field.h"
#include "dtune/generate/generate_options.h"
#include "dtune/tokenizer/tokenizer.h"

namespace {

const std::string kModelDir = std::string(DTUNE_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct";

struct Result {
  int status = -1;
  std::string out;  // stdout only; stderr goes to the test log
};

Result run(const std::string& args) {
  Result r;
  FILE* pipe = popen((std::string(DTUNE_BINARY) + " generate " + args).c_str(), "r");
  BOOST_REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) r.out.append(buf.data(), n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

// `dtune config --help` (the config keys and their help), stdout.
std::string run_config_help() {
  std::string out;
  FILE* pipe = popen((std::string(DTUNE_BINARY) + " config --help").c_str(), "r");
  BOOST_REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) out.append(buf.data(), n);
  BOOST_TEST(pclose(pipe) == 0);
  return out;
}

// transformers' greedy ids for prompt 0, first n, without the EOS.
std::string expected_text(size_t n) {
  std::ifstream in(std::string(DTUNE_GENERATE_ORACLE_DIR) + "/greedy.json");
  BOOST_REQUIRE(in);
  auto ids = nlohmann::json::parse(in)["base"]["single"][0].get<std::vector<int32_t>>();
  ids.resize(std::min(ids.size(), n));
  while (!ids.empty() && ids.back() == 2) ids.pop_back();  // SmolLM2's <|im_end|>
  return dtune::Tokenizer::load(kModelDir).decode(ids, true);
}

}  // namespace

BOOST_AUTO_TEST_CASE(stdout_is_the_greedy_text) {
  const Result r = run("--model " + kModelDir + " --prompt 'The capital of France is' --temperature 0 "
                       "--repetition-penalty 1 --max-new-tokens 16");
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.out == expected_text(16) + "\n");
}

BOOST_AUTO_TEST_CASE(jsonl_rows_in_order) {
  std::string dir = "/tmp/dtune_generate_command_test_XXXXXX";
  BOOST_REQUIRE(mkdtemp(dir.data()) != nullptr);
  const std::string input = dir + "/in.jsonl";
  std::ofstream(input) << "{\"prompt\": \"The capital of France is\"}\n\n{\"prompt\": \"Hello\"}\n";
  const Result r = run("--model " + kModelDir + " --input " + input +
                       " --temperature 0 --repetition-penalty 1 --max-new-tokens 16 --batch-size 2");
  BOOST_TEST(r.status == 0);
  std::vector<nlohmann::json> rows;
  size_t start = 0;
  for (size_t nl; (nl = r.out.find('\n', start)) != std::string::npos; start = nl + 1)
    rows.push_back(nlohmann::json::parse(r.out.substr(start, nl - start)));
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  BOOST_TEST(rows[0]["prompt"] == "The capital of France is");
  BOOST_TEST(rows[0]["completion"] == expected_text(16));  // batched with a shorter row
  BOOST_TEST(rows[1]["prompt"] == "Hello");
  BOOST_TEST(rows[0]["tokens"].get<int>() >= 1);
  BOOST_TEST(rows[0]["seconds"].get<double>() > 0);
  std::remove(input.c_str());  // not std::filesystem: see generator_test.cpp
  rmdir(dir.c_str());
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_and_bad_values_exit_1) {
  BOOST_TEST(run("--model " + kModelDir + " 2>/dev/null").status == 2);  // no prompt source
  BOOST_TEST(run("--model " + kModelDir + " --prompt a --input b 2>/dev/null").status == 2);
  BOOST_TEST(run("--model " + kModelDir + " --prompt a --top-p 2 2>/dev/null").status == 1);
  BOOST_TEST(run("--help").status == 0);
}

// The sampling flags are the [generate] config keys' definitions (generate_options.h): the same
// rule (top_p = 0 is refused by both, naming the flag here), the same help and default.
BOOST_AUTO_TEST_CASE(flags_share_the_generate_config_definitions) {
  const Result zero = run("--model " + kModelDir + " --prompt a --top-p 0 2>&1");
  BOOST_TEST(zero.status == 1);
  BOOST_TEST(zero.out.find("option --top-p must be in (0, 1]") != std::string::npos, zero.out);
  // --help wraps long lines: compare with runs of white space folded.
  auto fold = [](const std::string& s) {
    std::string out;
    for (char c : s) {
      const bool space = c == ' ' || c == '\n' || c == '\t';
      if (!(space && !out.empty() && out.back() == ' ')) out += space ? ' ' : c;
    }
    return out;
  };
  const std::string help = fold(run("--help").out);
  const std::string config_help = fold(run_config_help());
  for (const auto& f : dtune::GenerateOptions::fields()) {
    BOOST_TEST(help.find("--" + dtune::flag_name(f.key) + " arg") != std::string::npos, f.key);
    BOOST_TEST(help.find(f.help) != std::string::npos, f.key << " help");
    BOOST_TEST(config_help.find("--generate." + std::string(f.key) + " arg") != std::string::npos, f.key);
    BOOST_TEST(config_help.find(f.help) != std::string::npos, f.key << " config help");
  }
}

// Unset flags resolve as in transformers: the model folder's generation_config.json (the oracle's
// gen_model sets do_sample, temperature 0.8, top_p 0.9, max_new_tokens 40), then transformers'
// defaults (top_k 50); -v prints each value and its source on stderr; the text is the decode of
// transformers' seeded tokens for that folder with no knob given.
BOOST_AUTO_TEST_CASE(unset_flags_take_the_folders_generation_config_and_v_prints_them) {
  const std::string oracle_dir = DTUNE_GENERATE_ORACLE_DIR;
  std::ifstream in(oracle_dir + "/greedy.json");
  BOOST_REQUIRE(in);
  const nlohmann::json o = nlohmann::json::parse(in);
  const nlohmann::json& c = o["resolved"]["folder"];
  BOOST_REQUIRE(c["knobs"].empty());
  auto ids = c["ids"].get<std::vector<int32_t>>();
  while (!ids.empty() && ids.back() == 2) ids.pop_back();  // SmolLM2's <|im_end|>
  const std::string prompt = o["prompts"][o["sampled"]["prompt"].get<size_t>()];
  BOOST_REQUIRE(prompt.find('\'') == std::string::npos);
  const std::string err_file = oracle_dir + "/generate_v.stderr";
  const Result r = run("--model " + oracle_dir + "/gen_model --prompt '" + prompt + "' --seed " +
                       std::to_string(c["seed"].get<int>()) + " -v 2>" + err_file);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.out == dtune::Tokenizer::load(kModelDir).decode(ids, true) + "\n");
  std::ifstream err_in(err_file);
  const std::string err((std::istreambuf_iterator<char>(err_in)), std::istreambuf_iterator<char>());
  const std::string gen_file = oracle_dir + "/gen_model/generation_config.json";
  for (const std::string& line : {"do_sample = true (" + gen_file + ")", "temperature = 0.8 (" + gen_file + ")",
                                  "top_p = 0.9 (" + gen_file + ")", "max_new_tokens = 40 (" + gen_file + ")",
                                  std::string("top_k = 50 (transformers' default)"),
                                  std::string("repetition_penalty = 1 (transformers' default)"),
                                  std::string("seed = 3 (--seed)")})
    BOOST_TEST(err.find(line) != std::string::npos, line << " in:\n" << err);
}
