// Merging a PEFT LoRA adapter into its base model, producing a plain Hugging Face model folder
// (what `dtune merge` runs).
#pragma once

#include <cstdint>
#include <string>

namespace dtune {

struct MergeOptions {
  std::string model_dir;                  // base HF folder (config.json + safetensors)
  std::string adapter_dir;                // PEFT folder (adapter_config.json + adapter_model.safetensors)
  std::string output_dir;                 // written via a staging folder, renamed when complete
  std::string dtype = "auto";             // auto (the base weights' dtype) | fp16 | bf16 | fp32
  uint64_t max_shard_bytes = 2000000000;  // shard when the weights exceed this (bytes)
};

struct MergeReport {
  int64_t merged_weights = 0;  // base weights that received a LoRA delta
  int64_t total_weights = 0;   // tensors written
  uint64_t total_bytes = 0;    // bytes of tensor data written
  int64_t shards = 0;          // 1 = model.safetensors, >1 = model-0000k-of-0000n + index
  std::string dtype;           // output dtype name, e.g. "bfloat16"
};

// W' = W + scale * B @ A for every adapter module (fp32 math, stored in the output dtype), every
// other weight copied (converted to the output dtype when floating point). Copies config.json
// (with its dtype field updated), generation_config.json and the tokenizer files that exist.
// Throws dtune::Error when an adapter module has no base weight of matching shape.
MergeReport merge_adapter(const MergeOptions& options);

// "2GB" -> 2e9, "500MB", "100KB", "1GiB" -> 2^30, "123" -> 123 bytes (transformers' units).
// Throws dtune::Error naming --max-shard-size for anything else.
uint64_t parse_byte_size(const std::string& text);

}  // namespace dtune
