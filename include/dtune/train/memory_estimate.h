// The per-GPU memory a training config needs, predicted from the model's shapes before anything
// is loaded (`dtune config` prints it; docs/HPC.md tabulates it for 8B/32B/70B). Every term is
// arithmetic on config.json and the run config; the formulas and their sources are below.
#pragma once

#include <cstdint>
#include <string>

namespace dtune {

struct Config;
struct ModelConfig;

// Bytes per GPU, by what holds them.
struct MemoryEstimate {
  int64_t shard_group = 1;         // ranks one frozen weight is split over (1 = none)
  double base = 0;                 // frozen base weights held between layers: all / shard_group
  double gathered = 0;             // sharded: the gathered unit in use plus the next one (the
                                   // largest unit twice: a layer, or the embedding / LM head)
  double lora = 0;                 // LoRA A/B fp32 masters, their grads, the flat gradient
                                   // bucket and AdamW's two moments: 5 fp32 copies
  double activations = 0;          // one micro-batch's saved activations (see below)
  double logits = 0;               // one loss chunk (DecoderOptions::loss_chunk_size tokens):
                                   // logits in the model dtype, fp32 softmax and gradient,
                                   // chunk x vocab x (itemsize + 8)
  double runtime = 0;              // CUDA context, NCCL buffers, allocator slack: 2 GiB, assumed
  double total() const { return base + gathered + lora + activations + logits + runtime; }
};

// Tokens per micro-batch row the activations are sized for: data.pack_length when packing,
// else max_length (the pre-tokenized file's, which pretokenize's --max-length set).
//
// Activations per layer follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in
// Large Transformer Models", eq. 2) with flash attention (no 5as/h score term): 34 s b h bytes
// for 16-bit activations, scaled by itemsize / 2 and by the MLP width (intermediate / (4 h)
// for its 19 s b h share). With gradient checkpointing every N-th layer: each layer's 2-byte
// input is kept (s b h itemsize), plus one layer's full activations during its recompute, plus
// the N - 1 layers between checkpoints at full size.
//
// lora_params: trainable parameters (r (in + out) per adapted projection).
MemoryEstimate estimate_memory(const ModelConfig& model, const Config& config, int64_t world_size,
                               int64_t ranks_per_node, int64_t max_length, int64_t lora_params);

// r * (in + out) summed over the projections config.lora.target_modules names in every layer.
int64_t lora_parameter_count(const ModelConfig& model, const Config& config);

// A table of the estimate's terms in GiB, one per line, for `dtune config` and the docs.
std::string format_memory_estimate(const MemoryEstimate& estimate);

}  // namespace dtune
