// The generation knobs: the one definition of the sampling options and max_new_tokens, shared by
// `dtune generate`'s flags (--top-p ...) and the [generate] config section (generate.top_p ...):
// defaults, help and validation. No libtorch: the config links it (dtune_generate_options).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "dtune/core/option_field.h"

namespace at {
class Tensor;
}

namespace dtune {

// The recipe's sampling knobs, with the order and semantics of transformers' generate()
// (sampling.h). Defaults are the recipe's; temperature 0 means greedy.
struct SamplingOptions {
  double temperature = 0.6;          // > 0 samples from softmax(logits / T); 0 = greedy (argmax)
  double top_p = 0.95;               // nucleus mass in (0, 1]; 1 = off. Ignored when greedy
  int64_t top_k = 0;                 // keep the k largest logits (ties kept); 0 = off. Ignored when greedy
  double repetition_penalty = 1.15;  // > 0; 1 = off. Applies to every id already in the sequence
  uint64_t seed = 0;                 // seeds the CPU generator that draws the samples

  // temperature, top_p, top_k, repetition_penalty, seed with their help, in this order.
  static const std::vector<OptionField<SamplingOptions>>& fields();
};

// Throws dtune::Error naming the first bad field as names spells it ("option --top-p must be in
// (0, 1] (1 = off), got 1.5"): temperature < 0 or not finite, top_p outside (0, 1] (transformers
// accepts 0 and then keeps one token: greedy; say temperature = 0 for that), top_k < 0,
// repetition_penalty <= 0 or not finite.
void validate(const SamplingOptions& options, const OptionNames& names = OptionNames::command_line());

// Defaults are the recipe's generation test (max_new_tokens 512, T 0.6, top-p 0.95, top-k off,
// repetition penalty 1.15). Set sampling.temperature = 0 for greedy decoding.
struct GenerateOptions {
  int64_t max_new_tokens = 512;    // generated tokens per prompt, EOS included; >= 1
  SamplingOptions sampling;        // processors and seed (see sampling.h)
  bool add_special_tokens = true;  // encode prompts with the tokenizer's special tokens (BOS);
                                   // false for text that carries them (format_prompt says which)
  bool stop_at_eos = true;         // stop a row at any id of ModelConfig::eos_token_ids
  // Called with each step's chosen ids, (B) int64 on the host, before they are used; may
  // overwrite them. A distributed caller whose ranks generate together (sharded weights) makes
  // every rank take rank 0's choice here (a broadcast). Empty = the ids as chosen. Not an option.
  std::function<void(at::Tensor& ids)> agree_tokens;

  // The user's knobs: max_new_tokens, then SamplingOptions::fields() (add_special_tokens and
  // stop_at_eos follow from the prompt form and are not options).
  static const std::vector<OptionField<GenerateOptions>>& fields();
};

// Throws dtune::Error naming the option ("option --max-new-tokens must be >= 1, got 0"), then as
// validate(SamplingOptions).
void validate(const GenerateOptions& options, const OptionNames& names = OptionNames::command_line());

}  // namespace dtune
