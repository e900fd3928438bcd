// Fields, validation and resolution of the generation knobs (see generate_options.h).
#include "dtune/generate/generate_options.h"

#include <cmath>
#include <sstream>

#include "dtune/core/log.h"

namespace dtune {

bool SamplingOptions::greedy() const {
  return !do_sample.value_or(kTransformersDefaults.do_sample) ||
         temperature.value_or(kTransformersDefaults.temperature) == 0;
}

const std::vector<OptionField<SamplingOptions>>& SamplingOptions::fields() {
  static const std::vector<OptionField<SamplingOptions>> fields = {
      DTUNE_OPTION_FIELD(SamplingOptions, "do_sample", do_sample,
                         "true = sample, false = greedy; unset = generation_config.json, else false"),
      DTUNE_OPTION_FIELD(SamplingOptions, "temperature", temperature,
                         "sampling temperature; 0 = greedy; unset = generation_config.json, else 1"),
      DTUNE_OPTION_FIELD(SamplingOptions, "top_p", top_p,
                         "nucleus sampling mass in (0, 1]; 1 = off; unset = generation_config.json, else 1"),
      DTUNE_OPTION_FIELD(SamplingOptions, "top_k", top_k,
                         "keep the k most likely tokens; 0 = off; unset = generation_config.json, else 50"),
      DTUNE_OPTION_FIELD(SamplingOptions, "repetition_penalty", repetition_penalty,
                         "penalty on every id already in the sequence; 1 = off; unset = generation_config.json, else 1"),
      DTUNE_OPTION_FIELD(SamplingOptions, "seed", seed, "sampling seed"),
  };
  return fields;
}

void validate(const SamplingOptions& o, const OptionNames& names) {
  if (o.temperature)
    require_option(std::isfinite(*o.temperature) && *o.temperature >= 0, names("temperature"), *o.temperature,
                   "must be >= 0 (0 = greedy)");
  if (o.top_p) require_option(*o.top_p > 0 && *o.top_p <= 1, names("top_p"), *o.top_p, "must be in (0, 1] (1 = off)");
  if (o.top_k) require_option(*o.top_k >= 0, names("top_k"), *o.top_k, "must be >= 0 (0 = off)");
  if (o.repetition_penalty)
    require_option(std::isfinite(*o.repetition_penalty) && *o.repetition_penalty > 0, names("repetition_penalty"),
                   *o.repetition_penalty, "must be > 0 (1 = off)");
}

GenerateOptions GenerateOptions::unset() {
  GenerateOptions o;
  o.max_new_tokens.reset();
  o.max_length.reset();
  o.sampling.do_sample.reset();
  o.sampling.temperature.reset();
  o.sampling.top_p.reset();
  o.sampling.top_k.reset();
  o.sampling.repetition_penalty.reset();
  return o;
}

const std::vector<OptionField<GenerateOptions>>& GenerateOptions::fields() {
  static const std::vector<OptionField<GenerateOptions>> fields = [] {
    std::vector<OptionField<GenerateOptions>> f = {
        DTUNE_OPTION_FIELD(GenerateOptions, "max_new_tokens", max_new_tokens,
                           "tokens to generate at most; unset = generation_config.json, else 20"),
    };
    for (auto& s : nest_option_fields<GenerateOptions>(SamplingOptions::fields(),
                                                       [](GenerateOptions& o) -> SamplingOptions& { return o.sampling; }))
      f.push_back(std::move(s));
    return f;
  }();
  return fields;
}

void validate(const GenerateOptions& o, const OptionNames& names) {
  if (o.max_new_tokens) require_option(*o.max_new_tokens >= 1, names("max_new_tokens"), *o.max_new_tokens, "must be >= 1");
  if (o.max_length) require_option(*o.max_length >= 1, "generation_config.json max_length", *o.max_length, "must be >= 1");
  validate(o.sampling, names);
}

namespace {

std::string text_of(bool v) { return v ? "true" : "false"; }
template <class T>
std::string text_of(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Sets out from given, else file, else fallback; appends "key = value (source)" to lines.
// Returns whether given set it.
template <class T>
bool resolve_knob(std::optional<T>& out, const std::optional<T>& given, const std::optional<T>& file,
                  const T& fallback, const char* key, const std::string& file_name, const OptionNames& names,
                  std::vector<std::string>& lines) {
  std::string source;
  if (given) {
    out = given;
    source = names(key);
  } else if (file) {
    out = file;
    source = file_name;
  } else {
    out = fallback;
    source = "transformers' default";
  }
  lines.push_back(str(key, " = ", text_of(*out), " (", source, ")"));
  return given.has_value();
}

}  // namespace

ResolvedGenerateOptions resolve_generate_options(const GenerateOptions& given, const GenerationConfig& generation,
                                                 const OptionNames& names) {
  validate(given, names);
  ResolvedGenerateOptions r;
  r.options = given;  // seed, add_special_tokens, stop_at_eos, agree_tokens as given
  const std::string file = generation.file.empty() ? "generation_config.json" : generation.file;
  const auto& d = kTransformersDefaults;
  SamplingOptions& s = r.options.sampling;
  const SamplingOptions& g = given.sampling;
  std::vector<std::string>& lines = r.lines;

  // Lengths (_prepare_generated_length): max_new_tokens, given or the file's, wins; then the
  // file's max_length; then the library's max_length of 20 counted as new tokens.
  r.options.max_length.reset();
  if (given.max_new_tokens || generation.max_new_tokens) {
    resolve_knob<int64_t>(r.options.max_new_tokens, given.max_new_tokens, generation.max_new_tokens, 0,
                          "max_new_tokens", file, names, lines);
  } else if (generation.max_length) {
    r.options.max_new_tokens.reset();
    r.options.max_length = generation.max_length;
    lines.push_back(str("max_length = ", *generation.max_length, " (", file, "; prompt + new tokens)"));
  } else {
    r.options.max_new_tokens = d.max_length;
    lines.push_back(str("max_new_tokens = ", d.max_length, " (transformers' default max_length, as new tokens)"));
  }
  resolve_knob(s.do_sample, g.do_sample, generation.do_sample, d.do_sample, "do_sample", file, names, lines);
  // Given sampling knobs that would change a sampled draw (temperature 0 is dtune's greedy).
  const bool t = resolve_knob(s.temperature, g.temperature, generation.temperature, d.temperature, "temperature",
                              file, names, lines) && *g.temperature != 0 && *g.temperature != 1;
  const bool p = resolve_knob(s.top_p, g.top_p, generation.top_p, d.top_p, "top_p", file, names, lines) &&
                 *g.top_p < 1;
  const bool k = resolve_knob(s.top_k, g.top_k, generation.top_k, d.top_k, "top_k", file, names, lines) &&
                 *g.top_k != 0;
  resolve_knob(s.repetition_penalty, g.repetition_penalty, generation.repetition_penalty, d.repetition_penalty,
               "repetition_penalty", file, names, lines);
  lines.push_back(str("seed = ", s.seed, " (", names("seed"), ")"));

  // Values from the file get the same checks, named by the file.
  try {
    validate(r.options, names);
  } catch (const Error& e) {
    throw Error(str(e.what(), " (resolved from ", file, "; give the option explicitly to override it)"));
  }
  if (!*s.do_sample && (t || p || k))
    log::warn(str("generate: do_sample resolves to false (greedy), so the given ",
                  t ? names("temperature") + " " : "", p ? names("top_p") + " " : "", k ? names("top_k") + " " : "",
                  "is ignored, as transformers ignores it; give ", names("do_sample"), " true to sample"));
  return r;
}

}  // namespace dtune
