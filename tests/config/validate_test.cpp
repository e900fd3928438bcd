// Tests that validate() accepts the defaults (plus a data path) and names the option it rejects.
#include "dtune/config/config.h"

#include <boost/test/unit_test.hpp>

#include "dtune/config/config_parser.h"
#include "dtune/core/error.h"

using dtune::Config;

namespace {

Config valid() {
  Config c = dtune::load_config("", {"--data.path=x.h5"});
  c.train.precision = "fp32";
  return c;
}

// validate() on c must throw a message naming option.
void expect_rejected(const Config& c, const std::string& option) {
  try {
    dtune::validate(c);
  } catch (const dtune::Error& e) {
    BOOST_TEST(std::string(e.what()).find(option) != std::string::npos, e.what());
    return;
  }
  BOOST_FAIL("validate accepted a bad " << option);
}

}  // namespace

BOOST_AUTO_TEST_CASE(accepts_a_valid_config) { BOOST_CHECK_NO_THROW(dtune::validate(valid())); }

BOOST_AUTO_TEST_CASE(rejects_bad_values) {
  struct Case {
    std::string option;
    void (*mutate)(Config&);
  };
  const Case cases[] = {
      {"model.attention", [](Config& c) { c.model.attention = "flash"; }},
      {"lora.r", [](Config& c) { c.lora.r = 0; }},
      {"lora.alpha", [](Config& c) { c.lora.alpha = -1; }},
      {"lora.dropout", [](Config& c) { c.lora.dropout = 1.0; }},
      {"lora.target_modules", [](Config& c) { c.lora.target_modules = {"qproj"}; }},
      {"lora.target_modules", [](Config& c) { c.lora.target_modules = {"q_proj", "q_proj"}; }},
      {"lora.target_modules", [](Config& c) { c.lora.target_modules.clear(); }},
      {"data.path", [](Config& c) { c.data.path.clear(); }},
      {"data.micro_batch_size", [](Config& c) { c.data.micro_batch_size = 0; }},
      {"data.group_by_length", [](Config& c) { c.data.packing = true; c.data.group_by_length = true; }},
      {"train.precision", [](Config& c) { c.train.precision = "fp8"; }},
      {"train.device", [](Config& c) { c.train.device = "tpu"; }},
      {"train.lr_scheduler", [](Config& c) { c.train.lr_scheduler = "step"; }},
      {"train.learning_rate", [](Config& c) { c.train.learning_rate = 0; }},
      {"train.max_steps", [](Config& c) { c.train.max_steps = 0; }},
      {"train.gradient_accumulation_steps", [](Config& c) { c.train.gradient_accumulation_steps = 0; }},
      {"train.warmup_ratio", [](Config& c) { c.train.warmup_ratio = 1.5; }},
      {"train.max_grad_norm", [](Config& c) { c.train.max_grad_norm = -1; }},
      {"train.collective_timeout", [](Config& c) { c.train.collective_timeout = 0; }},
      {"train.adam_beta2", [](Config& c) { c.train.adam_beta2 = 1.0; }},
      {"checkpoint.keep_last", [](Config& c) { c.checkpoint.keep_last = 0; }},
      {"generate.top_p", [](Config& c) { c.generate.sampling.top_p = 0; }},
      {"generate.temperature", [](Config& c) { c.generate.sampling.temperature = -0.1; }},
      {"generate.prompt_template", [](Config& c) { c.generate.prompt_template = "alpaca"; }},
      {"log.progress", [](Config& c) { c.log.progress = "fancy"; }},
  };
  for (const Case& k : cases) {
    Config c = valid();
    k.mutate(c);
    expect_rejected(c, k.option);
  }
}

// fp16 and bf16 training on the CPU are allowed when asked for explicitly (train.device = cpu):
// the GPU path but the kernels, compared with the oracle in train_e2e_test. fp16/bf16 with
// train.device = auto on a machine without a GPU is refused at start by the trainer, not here.
BOOST_AUTO_TEST_CASE(half_precision_on_an_explicit_cpu_is_valid) {
  for (const char* precision : {"fp16", "bf16"}) {
    Config c = valid();
    c.train.precision = precision;
    c.train.device = "cpu";
    BOOST_CHECK_NO_THROW(dtune::validate(c));
  }
}
