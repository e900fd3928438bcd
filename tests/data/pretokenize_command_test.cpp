// The `dtune pretokenize` command line (DTUNE_BINARY): exit codes and messages for a bad input
// file, a usage error and --help, and a successful run's summary.
#include <sys/wait.h>

#include <array>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <filesystem>
#include <string>

#include "dtune/data/hdf5_dataset.h"
#include "test_files.h"

namespace {

struct Result {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};

Result run(const std::string& args) {
  const std::string cmd = std::string(DTUNE_BINARY) + " pretokenize " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  BOOST_REQUIRE(p != nullptr);
  std::array<char, 4096> buf;
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const std::string kTokenizer = std::string(DTUNE_TEST_DATA) + "/tokenizers/llama3_1";

}  // namespace

BOOST_AUTO_TEST_CASE(bad_input_exits_1_with_the_row_and_field) {
  dtune::test::ScratchDir dir("cli_bad");
  dtune::test::write_text(dir.file("in.json"),
                          "[{\"Question\": \"q\", \"Complex_CoT\": \"c\", \"Response\": \"r\"},\n"
                          " {\"Question\": \"q\", \"Complex_CoT\": [\"c\"], \"Response\": \"r\"}]");
  const Result r = run("--tokenizer " + kTokenizer + " --input " + dir.file("in.json") +
                       " --output " + dir.file("out.h5") + " --no-progress");
  BOOST_TEST_INFO(r.output);
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("error: " + dir.file("in.json") +
                           ": row 2 (line 2): field \"Complex_CoT\" is a array, expected a string") !=
             std::string::npos);
  BOOST_TEST(!std::filesystem::exists(dir.file("out.h5")));
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_and_help_exits_0) {
  const Result unknown = run("--no-such-option 3");
  BOOST_TEST(unknown.exit_code == 2);
  BOOST_TEST(unknown.output.find("no-such-option") != std::string::npos);
  const Result help = run("--help");
  BOOST_TEST(help.exit_code == 0);
  BOOST_TEST(help.output.find("--template-file") != std::string::npos);
  const Result missing = run("--input x.json --output y.h5");
  BOOST_TEST(missing.exit_code == 1);
  BOOST_TEST(missing.output.find("--tokenizer is required") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sample_set_runs_and_prints_a_summary) {
  dtune::test::ScratchDir dir("cli_ok");
  const Result r = run("--tokenizer " + kTokenizer + " --input " + DTUNE_SOURCE_DIR +
                       "/data/medical_sample.json --output " + dir.file("out.h5") +
                       " --eval-fraction 0.1 --threads 2");
  BOOST_TEST_INFO(r.output);
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(r.output.find("rows/s") != std::string::npos);
  const dtune::PretokenizedInfo info = dtune::Hdf5Dataset::read_info(dir.file("out.h5"));
  BOOST_TEST(info.num_train_rows + info.num_eval_rows == 40);
  BOOST_TEST(info.eval_fraction == 0.1);
}

BOOST_AUTO_TEST_CASE(conversational_sample_with_a_chat_template_and_flag_errors) {
  dtune::test::ScratchDir dir("cli_chat");
  const std::string input = std::string(DTUNE_SOURCE_DIR) + "/data/medical_chat_sample.jsonl";
  const std::string ds = std::string(DTUNE_TEST_DATA) + "/tokenizers/deepseek_v3";
  // DeepSeek-R1-Distill's template keeps only the answer after </think>: said, with the count.
  const Result r = run("--tokenizer " + ds + " --chat-template " + DTUNE_TEST_DATA +
                       "/chat_templates/r1_distill_qwen/tokenizer_config.json --input " + input + " --output " +
                       dir.file("out.h5") + " --eval-fraction 0 --no-progress");
  BOOST_TEST_INFO(r.output);
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(r.output.find("16 assistant turns had reasoning") != std::string::npos);
  const dtune::PretokenizedInfo info = dtune::Hdf5Dataset::read_info(dir.file("out.h5"));
  BOOST_TEST(info.num_train_rows == 16);
  BOOST_TEST(info.template_name == "chat template: DeepSeek-R1-Distill (first release)");
  const Result bad_format = run("--tokenizer " + ds + " --input " + input + " --output " + dir.file("x.h5") +
                                " --format alpaca");
  BOOST_TEST(bad_format.exit_code == 1);
  BOOST_TEST(bad_format.output.find("--format: expected auto, template, messages, prompt-completion or sharegpt, "
                                    "got 'alpaca'") != std::string::npos);
  const Result bad_flag = run("--tokenizer " + ds + " --input " + input + " --output " + dir.file("x.h5") +
                              " --assistant-only-loss maybe");
  BOOST_TEST(bad_flag.exit_code == 1);
  BOOST_TEST(bad_flag.output.find("--assistant-only-loss: expected true or false, got 'maybe'") != std::string::npos);
}
