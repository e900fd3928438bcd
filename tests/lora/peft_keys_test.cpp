// The PEFT key scheme (lora/peft_keys.h) against the names peft 0.21 writes: get_peft_model_state_dict
// drops the adapter name ("...q_proj.lora_A.weight"), a model's state_dict keeps it
// ("...q_proj.lora_A.default.weight"); tests/io/peft_adapter_test.cpp loads both from peft itself.
#include "dtune/lora/peft_keys.h"

#include <boost/test/unit_test.hpp>

namespace dtune {

BOOST_AUTO_TEST_CASE(keys_read_and_written_as_peft_names_them) {
  const std::string module = "model.layers.10.self_attn.q_proj";
  BOOST_TEST(peft_lora_key(module, LoraMatrix::kA) == "base_model.model.model.layers.10.self_attn.q_proj.lora_A.weight");
  BOOST_TEST(peft_lora_key(module, LoraMatrix::kB) == "base_model.model.model.layers.10.self_attn.q_proj.lora_B.weight");
  for (const char* name : {"base_model.model.model.layers.10.self_attn.q_proj.lora_B.weight",
                           "base_model.model.model.layers.10.self_attn.q_proj.lora_B.default.weight"}) {
    const std::optional<PeftLoraKey> k = parse_peft_lora_key(name);
    BOOST_TEST_REQUIRE(k.has_value(), name);
    BOOST_TEST(k->module == module);
    BOOST_TEST((k->matrix == LoraMatrix::kB));
    BOOST_TEST(base_weight_name(name) == module + ".weight");
  }
  for (const char* other : {"base_model.model.model.embed_tokens.lora_embedding_A.default",
                            "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector.default.weight",
                            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.bias",
                            "model.layers.0.self_attn.q_proj.lora_A.weight",  // no prefix
                            "base_model.model.lora_A.weight"}) {
    BOOST_TEST(!parse_peft_lora_key(other).has_value(), other);
    BOOST_TEST(base_weight_name(other).empty(), other);
  }
}

}  // namespace dtune
