// The generation knobs: the one definition of the sampling options and max_new_tokens, shared by
// `dtune generate`'s flags (--top-p ...) and the [generate] config section (generate.top_p ...):
// defaults, help, validation, and their resolution as transformers' generate() resolves them.
// No libtorch: the config links it (dtune_generate_options).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "dtune/core/option_field.h"
#include "dtune/io/generation_config.h"  // GenerationConfig (a plain struct; no link to dtune_io)

namespace at {
class Tensor;
}

namespace dtune {

// The sampling knobs, with the order and semantics of transformers' generate() (sampling.h).
// An unset knob is resolved as transformers does (resolve_generate_options): the model folder's
// generation_config.json, then transformers' library defaults (kTransformersDefaults). The
// member defaults are the recipe's generate() call (do_sample=True, temperature=0.6, top_p=0.95,
// repetition_penalty=1.15; top_k not given): the [generate] section's defaults. `dtune generate`
// starts from GenerateOptions::unset() instead.
struct SamplingOptions {
  std::optional<bool> do_sample = true;             // false = greedy (argmax); so is temperature 0
  std::optional<double> temperature = 0.6;          // > 0 samples from softmax(logits / T); 0 = greedy
  std::optional<double> top_p = 0.95;               // nucleus mass in (0, 1]; 1 = off. Ignored when greedy
  std::optional<int64_t> top_k;                     // keep the k largest logits (ties kept); 0 = off
  std::optional<double> repetition_penalty = 1.15;  // > 0; 1 = off. Applies to every id already in the sequence
  uint64_t seed = 0;                                // seeds the CPU generator that draws the samples

  // True when the processors pick the argmax: do_sample false or temperature 0 (unset = library default).
  bool greedy() const;

  // do_sample, temperature, top_p, top_k, repetition_penalty, seed with their help, in this order.
  static const std::vector<OptionField<SamplingOptions>>& fields();
};

// transformers' library defaults (GenerationConfig._get_default_generation_params, transformers
// 5.x): what an unset knob becomes when generation_config.json does not set it either.
struct TransformersGenerationDefaults {
  bool do_sample = false;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 50;
  double repetition_penalty = 1.0;
  int64_t max_length = 20;  // with neither max_new_tokens nor max_length given: 20 new tokens
};
inline constexpr TransformersGenerationDefaults kTransformersDefaults{};

// Throws dtune::Error naming the first bad field as names spells it ("option --top-p must be in
// (0, 1] (1 = off), got 1.5"): temperature < 0 or not finite, top_p outside (0, 1] (transformers
// accepts 0 and then keeps one token: greedy; say temperature = 0 for that), top_k < 0,
// repetition_penalty <= 0 or not finite. Unset fields are not checked.
void validate(const SamplingOptions& options, const OptionNames& names = OptionNames::command_line());

// Defaults are the recipe's generation test (max_new_tokens 512, sampled, T 0.6, top-p 0.95,
// top-k as transformers resolves it, repetition penalty 1.15).
struct GenerateOptions {
  std::optional<int64_t> max_new_tokens = 512;  // generated tokens per prompt, EOS included; >= 1
  // transformers' max_length: prompt (padded) + new tokens. Only from generation_config.json when
  // no max_new_tokens is set anywhere (resolve_generate_options); not an option.
  std::optional<int64_t> max_length;
  SamplingOptions sampling;        // processors and seed (see sampling.h)
  bool add_special_tokens = true;  // encode prompts with the tokenizer's special tokens (BOS);
                                   // false for text that carries them (format_prompt says which)
  bool stop_at_eos = true;         // stop a row at any id of ModelConfig::eos_token_ids
  // Called with each step's chosen ids, (B) int64 on the host, before they are used; may
  // overwrite them. A distributed caller whose ranks generate together (sharded weights) makes
  // every rank take rank 0's choice here (a broadcast). Empty = the ids as chosen. Not an option.
  std::function<void(at::Tensor& ids)> agree_tokens;

  // Every knob unset (seed 0): the command line's start, so that generation_config.json applies.
  static GenerateOptions unset();

  // The user's knobs: max_new_tokens, then SamplingOptions::fields() (add_special_tokens and
  // stop_at_eos follow from the prompt form and are not options).
  static const std::vector<OptionField<GenerateOptions>>& fields();
};

// Throws dtune::Error naming the option ("option --max-new-tokens must be >= 1, got 0"), then as
// validate(SamplingOptions).
void validate(const GenerateOptions& options, const OptionNames& names = OptionNames::command_line());

// GenerateOptions with every knob set, and where each value came from.
struct ResolvedGenerateOptions {
  GenerateOptions options;  // every knob set (max_new_tokens or max_length, not both)
  // One line per knob, "top_k = 50 (transformers' default)", in fields() order plus max_length
  // when it applies: what `dtune generate -v` prints.
  std::vector<std::string> lines;
};

// Resolves each knob as transformers' generate() does (GenerationMixin._prepare_generation_config):
// the value in given when set (the command line or a [generate] key), else generation's (the
// model folder's generation_config.json), else kTransformersDefaults. Lengths as
// _prepare_generated_length: max_new_tokens (given, then the file's) wins over the file's
// max_length; with neither, 20 new tokens. Throws dtune::Error as validate(), naming the option
// (names) or generation.file for a bad value from the file. Logs a warning, as transformers does,
// when do_sample resolves to false while a sampling knob was given.
ResolvedGenerateOptions resolve_generate_options(const GenerateOptions& given, const GenerationConfig& generation,
                                                 const OptionNames& names = OptionNames::command_line());

}  // namespace dtune
