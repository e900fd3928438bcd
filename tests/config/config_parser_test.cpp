// Tests INI + override parsing, unknown keys, value errors and the format/load round trip.
#include "dtune/config/config_parser.h"

#include <boost/program_options.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "dtune/core/error.h"
#include "dtune/core/option_field.h"

namespace fs = std::filesystem;

// Unset-able generation knobs (std::optional) in BOOST_TEST comparisons.
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<double>)
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<int64_t>)
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<bool>)
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
  BOOST_TEST(c.generate.sampling.repetition_penalty == 1.15);
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

// [lora] and [generate] bind the modules' option definitions (LoraOptions, GenerateOptions): each
// field is the config key "section.key" with the field's own help, and its default is the struct's.
BOOST_AUTO_TEST_CASE(sections_bind_the_module_option_definitions) {
  const auto desc = dtune::config_options_description();
  Config c = load_config("", {});
  const dtune::LoraOptions lora_defaults;
  const dtune::GenerateOptions generate_defaults;
  auto check = [&](const std::string& section, const auto& fields, auto& bound, const auto& defaults) {
    for (const auto& f : fields) {
      const std::string name = section + "." + f.key;
      const auto* o = desc.find_nothrow(name, /*approx=*/false);
      BOOST_TEST_REQUIRE(o != nullptr, name);
      BOOST_TEST(o->description() == std::string(f.help), name);
      std::visit([&](const auto& ref) {
        using Options = std::decay_t<decltype(defaults)>;
        BOOST_TEST((ref(bound) == ref(const_cast<Options&>(defaults))), name << " default");
      }, f.access);
    }
  };
  check("lora", dtune::LoraOptions::fields(), static_cast<dtune::LoraOptions&>(c.lora), lora_defaults);
  check("generate", dtune::GenerateOptions::fields(), static_cast<dtune::GenerateOptions&>(c.generate),
        generate_defaults);
  // A key sets the module's field.
  c = load_config("", {"--generate.top_k=50", "--lora.use_rslora=true"});
  BOOST_TEST(c.generate.sampling.top_k == 50);
  BOOST_TEST(c.lora.scale() == 16.0 / 2.0);  // alpha / sqrt(r), r = 4
}

// One validator per options struct; its messages name the option as the caller spells it, and
// the config and the command line apply the same rule (top_p = 0 was accepted by `dtune generate
// --top-p 0` and refused as generate.top_p).
BOOST_AUTO_TEST_CASE(one_validator_names_the_option_as_the_caller_spells_it) {
  dtune::GenerateOptions g;
  g.sampling.top_p = 0;
  expect_error([&] { dtune::validate(g, dtune::OptionNames::config_section("generate")); },
               {"option generate.top_p", "(0, 1]", "got 0"});
  expect_error([&] { dtune::validate(g); }, {"option --top-p", "(0, 1]", "got 0"});
  Config c = load_config("", {"--data.path=x.h5", "--train.precision=fp32", "--generate.top_p=0"});
  expect_error([&] { dtune::validate(c); }, {"option generate.top_p", "(0, 1]"});
  g = {};
  g.max_new_tokens = 0;
  expect_error([&] { dtune::validate(g); }, {"option --max-new-tokens must be >= 1"});
  dtune::LoraOptions l;
  l.r = 0;
  expect_error([&] { dtune::validate(l, dtune::OptionNames::config_section("lora")); }, {"option lora.r must be > 0"});
  expect_error([&] { dtune::validate(l, dtune::OptionNames::command_line()); }, {"option --r must be > 0"});
  l = {};
  l.target_modules = {"q_proj", "qkv"};
  expect_error([&] { dtune::validate(l, dtune::OptionNames::config_section("lora")); },
               {"option lora.target_modules: unknown module 'qkv'"});
}

// lora.target_modules takes peft's forms: names, all-linear, or one regex over module paths.
BOOST_AUTO_TEST_CASE(lora_target_modules_take_peft_forms) {
  for (const char* targets : {"all-linear", ".*\\.(q_proj|v_proj)", "q_proj,k_proj"}) {
    const Config c = load_config("", {"--data.path=x.h5", "--train.precision=fp32",
                                      std::string("--lora.target_modules=") + targets});
    BOOST_CHECK_NO_THROW(dtune::validate(c));
  }
  const Config c = load_config("", {"--lora.target_modules=.*\\.(q_proj|v_proj)"});
  BOOST_TEST(c.lora.targets("model.layers.3.self_attn.v_proj"));
  BOOST_TEST(!c.lora.targets("model.layers.3.self_attn.k_proj"));
  BOOST_TEST(load_config("", {"--lora.target_modules=all-linear"}).lora.targets("model.layers.0.mlp.down_proj"));
  BOOST_TEST(load_config("", {}).lora.targets("model.layers.0.self_attn.q_proj"));
  BOOST_TEST(!load_config("", {}).lora.targets("model.layers.0.mlp.up_proj"));
  Config bad = load_config("", {"--data.path=x.h5", "--train.precision=fp32", "--lora.target_modules=(q_proj"});
  expect_error([&] { dtune::validate(bad); }, {"option lora.target_modules", "(q_proj"});
}

namespace {

// A value of the field's type that differs from value.
void change(int64_t& v) { v += 1; }
void change(uint64_t& v) { v += 1; }
void change(double& v) { v = v * 2 + 1; }
void change(bool& v) { v = !v; }
void change(std::string& v) { v += "x"; }
void change(std::vector<std::string>& v) { v.push_back("x"); }
template <class T>
void change(std::optional<T>& v) {
  T inner = v.value_or(T{});
  change(inner);
  v = inner;
}

// The "key = value" lines of format_config's text that differ between a and b, as "section.key".
std::vector<std::string> changed_keys(const std::string& a, const std::string& b) {
  auto lines = [](const std::string& text) {
    std::vector<std::string> out;
    std::string section, line;
    std::istringstream in(text);
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      if (line.front() == '[') section = line.substr(1, line.size() - 2);
      else out.push_back(section + "." + line);
    }
    return out;
  };
  const auto la = lines(a), lb = lines(b);
  BOOST_REQUIRE_EQUAL(la.size(), lb.size());
  std::vector<std::string> out;
  for (size_t i = 0; i < la.size(); ++i)
    if (la[i] != lb[i]) out.push_back(la[i].substr(0, la[i].find(' ')));
  return out;
}

}  // namespace

// Every config key is one field of one section (config.h: each section's fields()): `--help`
// lists exactly those keys with the field's help, and each key is bound to its own member: a
// member changed in the struct changes that key's line of format_config and no other.
BOOST_AUTO_TEST_CASE(every_key_is_one_section_field) {
  const auto desc = dtune::config_options_description();
  const Config default_config;
  const std::string defaults = dtune::format_config(default_config);
  size_t keys = 0;
  auto check = [&](const std::string& section, const auto& fields, auto get) {
    for (const auto& f : fields) {
      ++keys;
      const std::string name = section + "." + f.key;
      const auto* o = desc.find_nothrow(name, /*approx=*/false);
      BOOST_TEST_REQUIRE(o != nullptr, name);
      BOOST_TEST(o->description() == std::string(f.help), name);
      Config c;
      std::visit([&](const auto& ref) { change(ref(get(c))); }, f.access);
      BOOST_TEST(changed_keys(defaults, dtune::format_config(c)) == std::vector<std::string>{name},
                 name << " changes its own line only");
    }
  };
  check("model", dtune::ModelSection::fields(), [](Config& c) -> auto& { return c.model; });
  check("lora", dtune::LoraSection::fields(), [](Config& c) -> auto& { return c.lora; });
  check("data", dtune::DataSection::fields(), [](Config& c) -> auto& { return c.data; });
  check("train", dtune::TrainSection::fields(), [](Config& c) -> auto& { return c.train; });
  check("checkpoint", dtune::CheckpointSection::fields(), [](Config& c) -> auto& { return c.checkpoint; });
  check("generate", dtune::GenerateSection::fields(), [](Config& c) -> auto& { return c.generate; });
  check("log", dtune::LogSection::fields(), [](Config& c) -> auto& { return c.log; });
  BOOST_TEST(desc.options().size() == keys);  // no key outside the sections' fields
}

// A section's validate() names the option as its caller spells it.
BOOST_AUTO_TEST_CASE(a_section_validator_names_the_option_as_the_caller_spells_it) {
  dtune::TrainSection t;
  t.data_parallel_shard_degree = 2;
  expect_error([&] { dtune::validate(t); },
               {"option train.data_parallel_shard_degree applies to train.sharding=hybrid only", "got 2"});
  expect_error([&] { dtune::validate(t, dtune::OptionNames::command_line()); },
               {"option --data-parallel-shard-degree applies to --sharding=hybrid only"});
  dtune::DataSection d;
  d.path = "x.h5";
  d.packing = d.group_by_length = true;
  expect_error([&] { dtune::validate(d); }, {"option data.group_by_length", "when data.packing = true"});
}
