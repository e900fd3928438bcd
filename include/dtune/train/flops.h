// Model FLOPs of a training pass, as MFU counts them (docs/TRAINING.md, "Throughput and MFU").
#pragma once

#include <cstdint>

namespace dtune {

struct Batch;
struct ModelConfig;

// FLOPs of one forward + backward over batch: 4N per non-padding token (forward 2N, backward to
// the activations 2N; the frozen base weights get no weight gradient) plus causal attention,
// 6 * layers * heads * head_dim * n^2 per row of n tokens (forward QK^T and PV, backward twice
// that). n_params: the model's parameter count N. Recomputation for activation checkpointing is
// not counted (as PaLM's MFU). An empty batch (B = 0) is 0.
double training_flops(const Batch& batch, const ModelConfig& config, int64_t n_params);

}  // namespace dtune
