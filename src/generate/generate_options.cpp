// Fields and validation of the generation knobs (see generate_options.h).
#include "dtune/generate/generate_options.h"

#include <cmath>

namespace dtune {

const std::vector<OptionField<SamplingOptions>>& SamplingOptions::fields() {
  static const std::vector<OptionField<SamplingOptions>> fields = {
      DTUNE_OPTION_FIELD(SamplingOptions, "temperature", temperature, "sampling temperature; 0 = greedy"),
      DTUNE_OPTION_FIELD(SamplingOptions, "top_p", top_p, "nucleus sampling mass in (0, 1]; 1 = off"),
      DTUNE_OPTION_FIELD(SamplingOptions, "top_k", top_k, "keep the k most likely tokens; 0 = off"),
      DTUNE_OPTION_FIELD(SamplingOptions, "repetition_penalty", repetition_penalty,
                         "penalty on every id already in the sequence; 1 = off"),
      DTUNE_OPTION_FIELD(SamplingOptions, "seed", seed, "sampling seed"),
  };
  return fields;
}

void validate(const SamplingOptions& o, const OptionNames& names) {
  require_option(std::isfinite(o.temperature) && o.temperature >= 0, names("temperature"), o.temperature,
                 "must be >= 0 (0 = greedy)");
  require_option(o.top_p > 0 && o.top_p <= 1, names("top_p"), o.top_p, "must be in (0, 1] (1 = off)");
  require_option(o.top_k >= 0, names("top_k"), o.top_k, "must be >= 0 (0 = off)");
  require_option(std::isfinite(o.repetition_penalty) && o.repetition_penalty > 0, names("repetition_penalty"),
                 o.repetition_penalty, "must be > 0 (1 = off)");
}

const std::vector<OptionField<GenerateOptions>>& GenerateOptions::fields() {
  static const std::vector<OptionField<GenerateOptions>> fields = [] {
    std::vector<OptionField<GenerateOptions>> f = {
        DTUNE_OPTION_FIELD(GenerateOptions, "max_new_tokens", max_new_tokens, "tokens to generate at most"),
    };
    for (auto& s : nest_option_fields<GenerateOptions>(SamplingOptions::fields(),
                                                       [](GenerateOptions& o) -> SamplingOptions& { return o.sampling; }))
      f.push_back(std::move(s));
    return f;
  }();
  return fields;
}

void validate(const GenerateOptions& o, const OptionNames& names) {
  require_option(o.max_new_tokens >= 1, names("max_new_tokens"), o.max_new_tokens, "must be >= 1");
  validate(o.sampling, names);
}

}  // namespace dtune
