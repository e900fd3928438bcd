// The Llama / Qwen2 decoder-only transformer, written functionally with at:: ops on weights it
// owns: embedding, N pre-norm layers (RMSNorm, GQA attention with RoPE, SwiGLU MLP), final
// norm, LM head (tied or untied). Base weights are frozen; LoRA adapters are optional.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dtune/io/model_config.h"
#include "dtune/kernels/kernel_policy.h"
#include "dtune/lora/lora_adapter.h"
#include "dtune/model/attention_mask.h"
#include "dtune/model/frozen_weights.h"
#include "dtune/model/kv_cache.h"
#include "dtune/model/layers.h"
#include "dtune/model/lm_loss.h"
#include "dtune/model/rope.h"

namespace dtune {

class WeightStore;

struct DecoderOptions {
  c10::ScalarType dtype = c10::ScalarType::Float;  // base weights and activations: fp32/fp16/bf16
  c10::Device device = c10::Device(c10::DeviceType::CPU);
  bool activation_checkpointing = false;  // recompute layers in backward (less memory)
  int64_t checkpoint_every = 1;           // with it: recompute layers 0, N, 2N, ... (1 = all)
  int64_t loss_chunk_size = 1024;         // loss tokens per LM-head + CE chunk; lower = less memory
  // Which kernels run (kernel_policy.h; the config's model.attention): kDtune = dtune's kernels
  // wherever they take the tensors (kernel_choice.h decides per call): on CPU the fused
  // cpu_attention (causal and packed rows without a KV cache), cpu_rms_norm, cpu_rotary,
  // cpu_swiglu, cpu_cross_entropy and the decoding product cpu_gemv; on CUDA flash attention's
  // varlen kernel for packed rows whose mask carries its Rows. kReference = libtorch's
  // reference for all of them (SDPA with a mask tensor, the ATen op sequences, at::linear).
  KernelPolicy kernels = KernelPolicy::kDtune;
  // A fact about the device, not a choice: a CUDA device runs flash attention (compute
  // capability >= 8.0; the trainer asks the device). false keeps packed rows on SDPA on CUDA.
  bool flash_capable = true;
};

class Decoder {
 public:
  // Loads config.json and the safetensors weights of an HF model folder, every weight resident.
  static Decoder load(const std::string& model_dir, const DecoderOptions& options = {});
  // Every weight resident, read through load_weight (WeightLoader: frozen_weights.h). Checks
  // every weight's shape against config and names the weight when one differs.
  Decoder(const ModelConfig& config, const WeightLoader& load_weight, const DecoderOptions& options);
  // The frozen weights in the store make_weights builds for frozen_units(config) (a sharded
  // store: train/sharded_weights.h). The forward acquires each unit just before it runs and
  // releases it after; in backward, each layer is acquired again before its gradient flows
  // (FSDP's unshard in the pre-backward hook), so a sharded store never holds more than the
  // running unit plus its prefetched successor.
  Decoder(const ModelConfig& config, const FrozenWeightsFactory& make_weights, const DecoderOptions& options);

  // The model's frozen tensors grouped into units, in order (see FrozenUnit): names as in the
  // HF checkpoint, shapes as config.json implies. Throws dtune::Error for an unsupported config.
  static std::vector<FrozenUnit> frozen_units(const ModelConfig& config);

  // input_ids (B, T) int64, position_ids (B, T) int64 (see attention_mask.h for padded and
  // packed rows) -> final-normed hidden states (B, T, H) in the model dtype.
  // With a cache: the T tokens are appended at the cache's slots [length, length + T) and attend
  // to every earlier real slot; mask must be causal() or padding() (B, T) for the new tokens.
  at::Tensor forward_hidden(const at::Tensor& input_ids, const at::Tensor& position_ids,
                            const AttentionMask& mask, KVCache* cache = nullptr);

  // hidden (..., H) -> logits (..., V) in the model dtype (all positions; for generation and
  // tests; training uses loss()).
  at::Tensor logits(const at::Tensor& hidden) const;

  // Cross-entropy SUM over the positions with a label, and their count. hidden (B, T, H);
  // labels (B, T) int64 with kIgnoreIndex (-100) where there is no loss.
  // labels_shifted = false (HF convention): labels[b, t] is the token at t, so position t - 1
  // predicts it (labels are usually input_ids with the prompt set to -100; the first label of a
  // row is never used). labels_shifted = true: labels[b, t] is the target of position t.
  // In packed rows with unshifted labels, the first token of each sequence must be -100 (it
  // would otherwise be predicted from the previous sequence).
  LossSum loss(const at::Tensor& hidden, const at::Tensor& labels, bool labels_shifted = false) const;
  // The same over positions selected beforehand (select_loss_targets, lm_loss.h), on any device.
  LossSum loss(const at::Tensor& hidden, const LossTargets& targets) const;

  // Training mode turns on LoRA dropout. Default: eval.
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }
  void set_activation_checkpointing(bool on, int64_t every = 1) {
    options_.activation_checkpointing = on;
    options_.checkpoint_every = every;
  }

  // LoRA (see lora_adapter.h for the contracts and PEFT key names).
  void add_lora(const LoraOptions& options, uint64_t seed);
  std::vector<std::pair<std::string, at::Tensor>> lora_parameters();
  void load_lora(const std::vector<std::pair<std::string, at::Tensor>>& tensors);
  // Adds scale * B @ A into the base weights. Throws dtune::Error when the weights are sharded.
  void merge_lora();
  // Every projection with its HF module path, in model order.
  NamedLinears named_linears();

  // A cache for batch rows and up to max_len tokens (prompt + generated), model dtype/device.
  KVCache make_kv_cache(int64_t batch, int64_t max_len) const;

  int64_t num_parameters() const;       // base (frozen) parameters; a tied head counts once
  int64_t num_lora_parameters() const;  // adapter parameters
  const ModelConfig& config() const { return config_; }
  const DecoderOptions& options() const { return options_; }
  // (V, H) and (V, H) (= embed if tied). With a sharded store, readable only inside an
  // acquire of their unit (frozen_weights()).
  const at::Tensor& embed_tokens() const { return embed_tokens_; }
  const at::Tensor& lm_head() const { return lm_head_; }
  // The store of the frozen weights (resident or sharded).
  FrozenWeights& frozen_weights() const { return *weights_; }

 private:
  std::vector<const LoraLinear*> linears() const;  // model order, as named_linears()
  size_t layer_unit(int64_t layer) const { return 1 + static_cast<size_t>(layer); }
  size_t final_norm_unit() const { return 1 + layers_.size(); }
  size_t lm_head_unit() const { return config_.tie_word_embeddings ? 0 : 2 + layers_.size(); }
  // In a collective (sharded) store's training forward: h unchanged, and when backward reaches
  // it, unit is acquired (and every other unit released) before the gradient flows on, and
  // next (the unit backward reaches after it) is prefetched.
  at::Tensor acquire_in_backward(const at::Tensor& h, size_t unit, std::optional<size_t> next) const;

  ModelConfig config_;
  DecoderOptions options_;
  std::shared_ptr<FrozenWeights> weights_;
  at::Tensor embed_tokens_;  // (V, H)
  std::vector<DecoderLayer> layers_;
  at::Tensor final_norm_;    // (H)
  at::Tensor lm_head_;       // (V, H)
  RotaryEmbedding rope_;
  bool training_ = false;
};

}  // namespace dtune
