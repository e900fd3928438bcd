// Whole-model adapter operations over a list of named LoraLinear layers: attach (fresh, or from
// saved weights), list the parameters under PEFT key names (peft_keys.h), load values, merge. Rank-free; the trainer
// flattens the gradients of lora_parameters() into its bucket.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dtune/lora/lora_options.h"
#include "dtune/lora/peft_keys.h"

namespace dtune {

class LoraLinear;

// HF module path of each projection ("model.layers.3.self_attn.q_proj") and the layer, in model
// order (layer by layer; q, k, v, o, gate, up, down). The pointers must outlive the call.
using NamedLinears = std::vector<std::pair<std::string, LoraLinear*>>;

// The weight update of one LoRA pair, W' = W + lora_delta(A, B, scale): scale * B @ A in fp32,
// (out_features, in_features). A (r, in) and B (out, r) in any float dtype. What peft's
// merge_and_unload adds (LoraLayer.get_delta_weight), and what LoraLinear::merge_adapter adds.
at::Tensor lora_delta(const at::Tensor& A, const at::Tensor& B, double scale);
// The same with options.scale().
at::Tensor lora_delta(const at::Tensor& A, const at::Tensor& B, const LoraOptions& options);

// One adapted projection of a saved adapter (what io/peft_adapter.h reads a PEFT folder into).
struct LoraModuleWeights {
  std::string module;  // HF module path, "model.layers.0.self_attn.q_proj"
  at::Tensor a;        // lora_A (r, in_features) fp32
  at::Tensor b;        // lora_B (out_features, r) fp32
  double scale = 0;    // this module's W' = W + scale * b @ a (lora_scale of its alpha and rank)
  int64_t rank() const { return a.size(0); }
};

// Attaches an adapter to every layer whose last path component is in options.target_modules.
// A is drawn from one CPU generator seeded with seed, layer after layer in model order, so the
// same seed gives the same adapter on any device. Throws dtune::Error for what
// LoraOptions::validate rejects (named as the [lora] keys) or targets that match nothing.
void attach_lora(const NamedLinears& linears, const LoraOptions& options, uint64_t seed);

// Attaches an adapter holding copies of each module's saved a and b, with its own rank and scale,
// to exactly the listed modules (the others stay plain); dropout applies in training. Throws
// dtune::Error naming the module when the model has no such projection or its shapes differ.
void attach_lora_weights(const NamedLinears& linears, const std::vector<LoraModuleWeights>& modules,
                         double dropout);

// (PEFT key, tensor) for every adapter matrix, in model order, A before B:
// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" (r, in) fp32, then
// "...q_proj.lora_B.weight" (out, r). The tensors are the live parameters (not copies).
std::vector<std::pair<std::string, at::Tensor>> lora_parameters(const NamedLinears& linears);

// Copies saved values into the attached adapters (dtype converted to fp32, moved to device).
// Every adapter key must be present with the right shape; unknown keys are errors too. Throws
// dtune::Error naming the key and the expected vs actual shape.
void load_lora(const NamedLinears& linears,
               const std::vector<std::pair<std::string, at::Tensor>>& tensors);

// Folds every adapter into its base weight (W += scale * B @ A) and removes the adapters.
void merge_lora(const NamedLinears& linears);

}  // namespace dtune
