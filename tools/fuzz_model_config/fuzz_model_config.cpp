// libFuzzer target: arbitrary bytes as a model folder's config.json -> load_model_config. A
// config that loads must satisfy what the model code relies on (src/io/model_config.cpp); any
// other input must give dtune::Error, never a crash or another exception. Build/run:
// scripts/fuzz.sh (tools/CMakeLists.txt).
#include <cstdint>
#include <string_view>

#include "dtune/core/error.h"
#include "dtune/io/model_config.h"
#include "fuzz_support.h"

using dtune::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dtune::fuzz::write_scratch_file("config.json", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const dtune::ModelConfig c = dtune::load_model_config(dtune::fuzz::scratch_dir());
    check(c.model_type == "llama" || c.model_type == "qwen2", "model_type");
    check(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0,
          "positive sizes");
    check(c.num_attention_heads > 0 && c.num_key_value_heads > 0, "positive head counts");
    check(c.num_attention_heads % c.num_key_value_heads == 0, "heads divisible by kv heads");
    check(c.head_dim > 0 && c.head_dim % 2 == 0, "head_dim positive and even");
    check(c.rms_norm_eps > 0 && c.rope_theta > 0, "eps and theta positive");
    check(c.model_type != "qwen2" || c.attention_bias, "qwen2 has q/k/v biases");
  } catch (const dtune::Error&) {
    // Rejected input: the expected outcome for almost all fuzz inputs.
  }
  return 0;
}
