// Tests INI + override parsing, unknown keys, value errors and the format/load round trip.
#include "dtune/config/config_parser.h"

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "dtune/core/error.h"

namespace fs = std::filesystem;
using dtune::Config;
using dtune::Error;
using dtune::load_config;

namespace {

// Writes text to a fresh temporary INI file and returns its path.
std::string write_ini(const std::string& text) {
  static int n = 0;
  const fs::path p = fs::temp_directory_path() / ("dtune_cfg_" + std::to_string(::getpid()) + "_" + std::to_string(n++) + ".ini");
  std::ofstream(p) << text;
  return p.string();
}

// Runs f, expects a dtune::Error whose message contains every piece.
template <typename F>
void expect_error(F f, std::initializer_list<std::string> pieces) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : pieces) BOOST_TEST(msg.find(p) != std::string::npos, "'" << p << "' not in: " << msg);
    return;
  }
  BOOST_FAIL("expected dtune::Error");
}

}  // namespace

BOOST_AUTO_TEST_CASE(defaults_are_the_recipe) {
  const Config c = load_config("", {});
  BOOST_TEST(c.lora.r == 4);
  BOOST_TEST(c.lora.alpha == 16.0);
  BOOST_TEST(c.lora.dropout == 0.1);
  BOOST_TEST((c.lora.target_modules == std::vector<std::string>{"q_proj", "v_proj"}));
  BOOST_TEST(c.train.precision == "fp16");
  BOOST_TEST(c.train.gradient_accumulation_steps == 4);
  BOOST_TEST(c.data.micro_batch_size == 2);
  BOOST_TEST(c.train.max_grad_norm == 0.3);
  BOOST_TEST(c.generate.repetition_penalty == 1.15);
}

BOOST_AUTO_TEST_CASE(ini_then_overrides_in_order) {
  const std::string ini = write_ini(
      "# comment\n[model]\npath = /models/x\n[lora]\nr = 16\ntarget_modules = q_proj, k_proj ,v_proj\n"
      "[train]\nlearning_rate = 2e-4\ngradient_checkpointing = false\n[data]\nseed = 7\n");
  const Config c = load_config(ini, {"--lora.r=8", "train.learning_rate=3e-4", "--lora.r=32"});
  BOOST_TEST(c.model.path == "/models/x");
  BOOST_TEST(c.lora.r == 32);  // the last override wins
  BOOST_TEST((c.lora.target_modules == std::vector<std::string>{"q_proj", "k_proj", "v_proj"}));
  BOOST_TEST(c.train.learning_rate == 3e-4);
  BOOST_TEST(c.train.gradient_checkpointing == false);
  BOOST_TEST(c.data.seed == 7u);
  fs::remove(ini);
}

BOOST_AUTO_TEST_CASE(unknown_key_in_file_is_an_error) {
  const std::string ini = write_ini("[train]\nlearning_rte = 1e-4\n");
  expect_error([&] { load_config(ini, {}); }, {ini, "learning_rte"});
  fs::remove(ini);
}

BOOST_AUTO_TEST_CASE(unknown_section_is_an_error) {
  const std::string ini = write_ini("[optim]\nlr = 1e-4\n");
  expect_error([&] { load_config(ini, {}); }, {ini, "optim.lr"});
  fs::remove(ini);
}

BOOST_AUTO_TEST_CASE(unknown_override_is_an_error) {
  expect_error([] { load_config("", {"--train.lr=1"}); }, {"train.lr"});
  expect_error([] { load_config("", {"--train.learning_rate"}); }, {"--section.key=value"});
}

BOOST_AUTO_TEST_CASE(bad_values_name_the_option) {
  expect_error([] { load_config("", {"--lora.r=four"}); }, {"lora.r", "integer", "four"});
  expect_error([] { load_config("", {"--train.learning_rate=1e-4x"}); }, {"train.learning_rate", "number"});
  expect_error([] { load_config("", {"--train.gradient_checkpointing=maybe"}); }, {"train.gradient_checkpointing", "true or false"});
  expect_error([] { load_config("", {"--data.seed=-3"}); }, {"data.seed", "non-negative"});
  const std::string ini = write_ini("[lora]\nr = 4.5\n");
  expect_error([&] { load_config(ini, {}); }, {"lora.r", ini});
  fs::remove(ini);
}

BOOST_AUTO_TEST_CASE(missing_file_is_an_error) {
  expect_error([] { load_config("/nonexistent/x.ini", {}); }, {"/nonexistent/x.ini"});
}

BOOST_AUTO_TEST_CASE(config_value_prints_one_option) {
  const Config c = load_config("", {"--data.path=/d/x.h5", "--lora.dropout=0.1", "--train.learning_rate=1e-4"});
  BOOST_TEST(dtune::config_value(c, "data.path") == "/d/x.h5");
  BOOST_TEST(dtune::config_value(c, "lora.dropout") == "0.1");  // shortest text, not 0.10000000000000001
  BOOST_TEST(dtune::config_value(c, "train.learning_rate") == "1e-04");  // to_chars picks the shorter form
  expect_error([&] { dtune::config_value(c, "data.nope"); }, {"data.nope", "dtune config --help"});
}

BOOST_AUTO_TEST_CASE(format_then_load_round_trips) {
  Config c = load_config("", {"--model.path=/m", "--lora.r=16", "--lora.target_modules=q_proj,o_proj,down_proj",
                               "--train.learning_rate=1.2345678901234e-05", "--checkpoint.resume=latest",
                               "--train.seed=123456789012"});
  c.generate.prompt = "line one\nline two \\ backslash";
  const std::string text = dtune::format_config(c);
  const std::string ini = write_ini(text);
  const Config back = load_config(ini, {});
  BOOST_TEST(dtune::format_config(back) == text);
  BOOST_TEST(back.generate.prompt == c.generate.prompt);
  BOOST_TEST(back.train.learning_rate == c.train.learning_rate);  // shortest round-trip text: exact
  BOOST_TEST(back.train.seed == 123456789012u);
  BOOST_TEST(back.lora.target_modules.size() == 3u);
  fs::remove(ini);
}

BOOST_AUTO_TEST_CASE(a_renamed_key_names_its_new_name) {
  const std::string ini = write_ini("[train]\ncheckpoint_every = 2\n");
  expect_error([&] { load_config(ini, {}); },
               {"option train.checkpoint_every (" + ini + ") is now train.activation_checkpoint_every", "rename it"});
  expect_error([] { load_config("", {"--train.checkpoint_every=2"}); },
               {"option train.checkpoint_every (command line) is now train.activation_checkpoint_every"});
  BOOST_TEST(load_config("", {"--train.activation_checkpoint_every=2"}).train.activation_checkpoint_every == 2);
  const std::string old_timeout = write_ini("[train]\nnccl_timeout = 30\n");
  expect_error([&] { load_config(old_timeout, {}); },
               {"option train.nccl_timeout (" + old_timeout + ") is now train.collective_timeout", "MPI collectives",
                "rename it"});
  BOOST_TEST(load_config("", {"--train.collective_timeout=30"}).train.collective_timeout == 30.0);
  fs::remove(old_timeout);
}
