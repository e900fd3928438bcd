// Model FLOPs of a training pass, as MFU counts them (docs/TRAINING.md, "Throughput and MFU").
#pragma once

#include <cstdint>

namespace dtune {

struct Batch;
struct ModelConfig;

// The parameters that do matrix work for every token: all of them but the input embedding, whose
// lookup is no matmul; with tied embeddings the shared matrix is counted once, as the LM head.
// The head is counted for every token, as the reference 6N/4N formulas do (PaLM appendix B),
// although dtune evaluates it on loss positions only. n_params: the model's total count.
int64_t matmul_parameters(const ModelConfig& config, int64_t n_params);

// FLOPs of one forward + backward over batch: 4N per non-padding token (forward 2N, backward to
// the activations 2N; the frozen base weights get no weight gradient), N = matmul_parameters(),
// plus causal attention, 6 * layers * heads * head_dim * n^2 per row of n tokens (forward QK^T
// and PV, backward twice that). Recomputation for activation checkpointing is not counted (as
// PaLM's MFU). An empty batch (B = 0) is 0.
double training_flops(const Batch& batch, const ModelConfig& config, int64_t n_matmul_params);

}  // namespace dtune
