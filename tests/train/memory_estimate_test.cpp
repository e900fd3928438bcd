// Tests src/train/memory_estimate.cpp: the frozen-weight bytes it predicts equal the sizes of
// the Decoder's own frozen units (Decoder::frozen_units, the tensors a model loads) for a Llama,
// a Qwen2 with biases and a tied Qwen2; its LoRA parameter count equals what add_lora attaches;
// the activation and loss-chunk terms equal the formulas of memory_estimate.h computed by hand.
#include "dtune/train/memory_estimate.h"

#include <boost/test/unit_test.hpp>

#include <string>

#include "dtune/config/config.h"
#include "dtune/io/model_config.h"
#include "dtune/lora/lora_linear.h"
#include "dtune/model/decoder.h"

namespace dtune {
namespace {

const std::string kModels = std::string(DTUNE_TEST_DATA) + "/model/";

int64_t frozen_elements(const ModelConfig& c) {
  int64_t n = 0;
  for (const FrozenUnit& u : Decoder::frozen_units(c))
    for (const FrozenTensorSpec& t : u) {
      int64_t k = 1;
      for (const int64_t d : t.shape) k *= d;
      n += k;
    }
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(base_bytes_are_the_decoders_frozen_tensors_split_over_the_group) {
  for (const char* name : {"tiny_llama", "tiny_qwen2", "tiny_qwen2_tied"}) {
    const ModelConfig c = load_model_config(kModels + name);
    Config cfg;
    cfg.train.precision = "bf16";
    for (const char* sharding : {"none", "full", "hybrid"}) {
      cfg.train.sharding = sharding;
      const MemoryEstimate e = estimate_memory(c, cfg, /*world=*/8, /*per_node=*/4, 64, 0);
      const int64_t group = std::string(sharding) == "none" ? 1 : std::string(sharding) == "full" ? 8 : 4;
      BOOST_TEST(e.shard_group == group);
      BOOST_TEST(e.base * static_cast<double>(group) == 2.0 * static_cast<double>(frozen_elements(c)), name);
      BOOST_TEST((e.gathered > 0) == (group > 1));
    }
  }
}

BOOST_AUTO_TEST_CASE(lora_count_is_what_add_lora_attaches) {
  Decoder model = Decoder::load(kModels + "tiny_qwen2");
  Config cfg;
  cfg.lora.r = 3;
  cfg.lora.target_modules = {"q_proj", "v_proj", "down_proj", "gate_proj"};
  LoraOptions lora;
  lora.r = 3;
  lora.target_modules = cfg.lora.target_modules;
  model.add_lora(lora, 1);
  BOOST_TEST(lora_parameter_count(model.config(), cfg) == model.num_lora_parameters());
}

BOOST_AUTO_TEST_CASE(activations_and_loss_chunk_follow_the_stated_formulas) {
  const ModelConfig c = load_model_config(kModels + "tiny_llama");  // H 64, I 128, L 2, V 320
  Config cfg;
  cfg.train.precision = "fp16";
  cfg.data.micro_batch_size = 3;
  const double sbh = 3.0 * 100 * 64;                   // rows x tokens x hidden
  const double layer = (15 + 19 * (128.0 / 256)) * sbh;  // Korthikanti 34sbh, MLP at I/4H, 2 bytes
  cfg.train.gradient_checkpointing = false;
  MemoryEstimate e = estimate_memory(c, cfg, 1, 1, 100, 0);
  BOOST_TEST(e.activations == 2 * layer);
  cfg.train.gradient_checkpointing = true;
  cfg.train.activation_checkpoint_every = 2;
  e = estimate_memory(c, cfg, 1, 1, 100, 0);
  BOOST_TEST(e.activations == 2 * sbh * 2 + layer * 2);
  BOOST_TEST(e.logits == 300.0 * 320 * (2 + 8));  // min(1024, 3 x 100) positions
  BOOST_TEST(e.lora == 0);
  e = estimate_memory(c, cfg, 1, 1, 100, 1000);
  BOOST_TEST(e.lora == 20000);  // 5 fp32 copies
}

}  // namespace dtune
