// Whole-model adapter operations over a list of named LoraLinear layers: attach, list the
// parameters under PEFT key names, load a saved adapter, merge. Rank-free; the trainer
// flattens the gradients of lora_parameters() into its bucket.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace at {
class Tensor;
}

namespace dtune {

class LoraLinear;
struct LoraOptions;

// HF module path of each projection ("model.layers.3.self_attn.q_proj") and the layer, in model
// order (layer by layer; q, k, v, o, gate, up, down). The pointers must outlive the call.
using NamedLinears = std::vector<std::pair<std::string, LoraLinear*>>;

// PEFT's key prefix for a LoRA-wrapped causal LM: "base_model.model." + module path.
constexpr const char* kPeftPrefix = "base_model.model.";

// Attaches an adapter to every layer whose last path component is in options.target_modules.
// A is drawn from one CPU generator seeded with seed, layer after layer in model order, so the
// same seed gives the same adapter on any device. Throws dtune::Error for unknown target names,
// r < 1, dropout outside [0, 1), or targets that match nothing.
void attach_lora(const NamedLinears& linears, const LoraOptions& options, uint64_t seed);

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
