// Logits processors and next-token selection, with the order and semantics of transformers'
// generate(): repetition penalty -> temperature -> top-k -> top-p -> softmax + multinomial.
#pragma once

#include <cstdint>

#include "dtune/generate/generate_options.h"  // SamplingOptions

namespace at {
class Tensor;
struct Generator;
}  // namespace at

namespace dtune {

// logits (B, V) float; seen_ids (B, L) int64: the ids already in each sequence (prompt included).
// Entries < 0 are ignored (left padding). Each seen id's logit is divided by penalty when
// positive and multiplied by it otherwise, once per id however often it occurs. Returns a copy.
at::Tensor apply_repetition_penalty(const at::Tensor& logits, const at::Tensor& seen_ids,
                                    double penalty);
// logits / temperature; temperature > 0.
at::Tensor apply_temperature(const at::Tensor& logits, double temperature);
// Sets to -inf every logit below the k-th largest of its row; k > V keeps all. k >= 1.
at::Tensor apply_top_k(const at::Tensor& logits, int64_t top_k);
// Transformers' TopPLogitsWarper: sort ascending, cumsum of softmax, remove where the cumulative
// probability <= 1 - top_p, but always keep the largest min_tokens_to_keep. Removed -> -inf.
at::Tensor apply_top_p(const at::Tensor& logits, double top_p, int64_t min_tokens_to_keep = 1);

// The whole pipeline as generate() builds it: the penalty when != 1, then (sampling only, i.e.
// not options.greedy()) temperature when != 1, top-k when != 0, top-p when < 1. An unset knob
// is transformers' library default (kTransformersDefaults: top_k 50); generate_ids() resolves
// generation_config.json first. logits (B, V) any float dtype; returns float32 (B, V) scores.
at::Tensor process_logits(const at::Tensor& logits, const at::Tensor& seen_ids,
                          const SamplingOptions& options);

// A CPU generator seeded with seed (the same stream torch.manual_seed(seed) gives on CPU).
at::Generator make_sampling_generator(uint64_t seed);

// Next token per row, (B,) int64 on the CPU: argmax of the processed scores when
// options.greedy(), else one multinomial draw from their softmax using generator. logits (B, V) and seen_ids
// may live on any device; they are copied to the host first and every processor runs there, so
// a seed gives the same tokens on every device, and train.deterministic (libtorch's
// deterministic algorithms, which refuse top-p's cumsum on CUDA) does not stop generation.
at::Tensor select_next_tokens(const at::Tensor& logits, const at::Tensor& seen_ids,
                              const SamplingOptions& options, at::Generator& generator);

}  // namespace dtune
