// Logits processors and next-token selection (see sampling.h); each mirrors the transformers
// class named beside it so that parity tests can compare them one by one.
#include "dtune/generate/sampling.h"

#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "dtune/core/error.h"

namespace dtune {

// RepetitionPenaltyLogitsProcessor: pad the vocabulary by one column that absorbs the ignored
// (negative) ids, gather, penalize, scatter back, drop the column.
at::Tensor apply_repetition_penalty(const at::Tensor& logits, const at::Tensor& seen_ids,
                                    double penalty) {
  DTUNE_CHECK(logits.dim() == 2 && seen_ids.dim() == 2 && seen_ids.size(0) == logits.size(0),
              "apply_repetition_penalty: logits must be (B, V) and seen_ids (B, L), got ",
              logits.sizes(), " and ", seen_ids.sizes());
  if (seen_ids.size(1) == 0) return logits.clone();
  const int64_t vocab = logits.size(1);
  at::Tensor ids = seen_ids.to(logits.device(), at::kLong);
  ids = at::where(ids.lt(0), at::full({}, vocab, ids.options()), ids.clamp_max(vocab));
  at::Tensor padded = at::constant_pad_nd(logits, {0, 1}, 0);
  at::Tensor score = padded.gather(1, ids);
  score = at::where(score.lt(0), score * penalty, score / penalty);
  return padded.scatter(1, ids, score).narrow(1, 0, vocab);
}

// TemperatureLogitsWarper.
at::Tensor apply_temperature(const at::Tensor& logits, double temperature) {
  DTUNE_CHECK(temperature > 0, "apply_temperature: temperature must be > 0, got ", temperature);
  return logits / temperature;
}

// TopKLogitsWarper (min_tokens_to_keep = 1).
at::Tensor apply_top_k(const at::Tensor& logits, int64_t top_k) {
  DTUNE_CHECK(top_k >= 1, "apply_top_k: top_k must be >= 1, got ", top_k);
  const int64_t k = std::min<int64_t>(top_k, logits.size(-1));
  at::Tensor kth = std::get<0>(at::topk(logits, k)).narrow(-1, k - 1, 1);  // (B, 1)
  return logits.masked_fill(logits.lt(kth), -std::numeric_limits<double>::infinity());
}

// TopPLogitsWarper.
at::Tensor apply_top_p(const at::Tensor& logits, double top_p, int64_t min_tokens_to_keep) {
  DTUNE_CHECK(top_p >= 0 && top_p <= 1, "apply_top_p: top_p must be in [0, 1], got ", top_p);
  auto [sorted, order] = at::sort(logits, /*dim=*/-1, /*descending=*/false);
  at::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
  at::Tensor remove_sorted = cumulative.le(1 - top_p);
  const int64_t keep = std::min<int64_t>(min_tokens_to_keep, logits.size(-1));
  remove_sorted.narrow(-1, logits.size(-1) - keep, keep).fill_(false);
  at::Tensor remove = remove_sorted.scatter(1, order, remove_sorted);
  return logits.masked_fill(remove, -std::numeric_limits<double>::infinity());
}

at::Tensor process_logits(const at::Tensor& logits, const at::Tensor& seen_ids,
                          const SamplingOptions& o) {
  const auto& d = kTransformersDefaults;
  // generate() copies the last position's logits to float32 before any processor.
  at::Tensor scores = logits.to(at::kFloat);
  const double penalty = o.repetition_penalty.value_or(d.repetition_penalty);
  if (penalty != 1.0) scores = apply_repetition_penalty(scores, seen_ids, penalty);
  if (o.greedy()) return scores;  // greedy: generate() adds no warpers
  const double temperature = o.temperature.value_or(d.temperature);
  const int64_t top_k = o.top_k.value_or(d.top_k);
  const double top_p = o.top_p.value_or(d.top_p);
  if (temperature != 1.0) scores = apply_temperature(scores, temperature);
  if (top_k != 0) scores = apply_top_k(scores, top_k);
  if (top_p < 1.0) scores = apply_top_p(scores, top_p);
  return scores;
}

at::Generator make_sampling_generator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

at::Tensor select_next_tokens(const at::Tensor& logits, const at::Tensor& seen_ids,
                              const SamplingOptions& o, at::Generator& generator) {
  // On the host: top-p's cumsum is refused on CUDA under deterministic algorithms, and the
  // token has to come back to the host anyway.
  const at::Tensor scores = process_logits(logits.to(at::kCPU), seen_ids.to(at::kCPU), o);
  if (o.greedy()) return scores.argmax(-1);
  return at::multinomial(scores.softmax(-1), 1, /*replacement=*/false, generator).squeeze(1);
}

}  // namespace dtune
