// The resolved configuration of a dtune run: one plain struct per INI section. Each section is
// the one definition of its keys: every field has its default here and a comment with its unit;
// fields() lists the user-facing keys with the help `dtune train --help` prints (src/config/
// config.cpp); validate() checks the section. Boost.Program_options only fills the structs
// through those fields (src/config/config_parser.cpp). [lora] and [generate] embed the modules'
// own options structs (LoraOptions, GenerateOptions), which `dtune generate`'s flags bind too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtune/core/option_field.h"
#include "dtune/generate/generate_options.h"
#include "dtune/lora/lora_options.h"

namespace dtune {

// [model]: which Hugging Face model folder to fine-tune.
struct ModelSection {
  std::string path = "models/SmolLM2-135M-Instruct";  // HF folder: config.json + *.safetensors
  std::string tokenizer;  // tokenizer.json or its folder; empty = the model folder
  // The kernel policy (kernels/kernel_policy.h), for every kernel dtune has its own of.
  // auto: dtune's kernels where they apply (on CPU the fused attention, RMSNorm, RoPE, SwiGLU
  // and cross-entropy kernels and the few-row decoding product; flash attention's varlen kernel
  // for packed rows on CUDA, compute capability >= 8.0). reference: libtorch's reference for
  // every one (SDPA with a mask tensor, the ATen op sequences), to compare or to rule dtune's
  // kernels out. sdpa: the old name of reference (it switched attention only).
  std::string attention = "auto";

  // The [model] keys, in config-file order, with their help.
  static const std::vector<OptionField<ModelSection>>& fields();
};

// [lora]: the adapter. Its hyper-parameters are LoraOptions (lora/lora_options.h: the one
// definition of lora.r, alpha, dropout, target_modules, use_rslora, with their defaults, help and
// validation); the config adds where to start from.
struct LoraSection : LoraOptions {
  std::string init_adapter;  // PEFT adapter folder to start from; empty = fresh (B = 0)

  // The [lora] keys, in config-file order, with their help. LoraOptions::fields(), then init_adapter.
  static const std::vector<OptionField<LoraSection>>& fields();
};

// [data]: the pre-tokenized HDF5 file (see docs/DATA_FORMAT.md) and how rows become batches.
struct DataSection {
  std::string path;                // FILE.h5 written by `dtune pretokenize`
  int64_t micro_batch_size = 2;    // rows per rank per micro-step (recipe: 2)
  bool packing = false;            // pack rows into pack_length sequences (no padding)
  int64_t pack_length = 2048;      // tokens per packed sequence
  bool group_by_length = false;    // pad-batching only: sort rows by length within a window
  bool shuffle = true;             // per-epoch shuffle by (seed, epoch)
  uint64_t seed = 42;              // shuffle seed; same seed = same order on any rank count

  // The [data] keys, in config-file order, with their help.
  static const std::vector<OptionField<DataSection>>& fields();
};

// [train]: the optimisation loop.
struct TrainSection {
  std::string precision = "fp16";     // fp16 (loss scaling) | bf16 | fp32 (CPU, tests)
  std::string device = "auto";        // auto (cuda if visible) | cpu | cuda
  int64_t epochs = 1;                 // passes over the train split
  int64_t max_steps = -1;             // optimizer steps; -1 = run the epochs
  int64_t gradient_accumulation_steps = 4;  // micro-steps per optimizer step (recipe: 4)
  double learning_rate = 1e-4;        // peak LR after warmup
  double weight_decay = 0.01;         // AdamW decoupled weight decay
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  double warmup_ratio = 0.03;         // warmup as a fraction of total steps (used if warmup_steps = 0)
  int64_t warmup_steps = 0;           // warmup in steps; overrides warmup_ratio when > 0
  std::string lr_scheduler = "linear";  // linear | cosine | constant (after warmup)
  double max_grad_norm = 0.3;         // global L2 clip; 0 = no clipping
  bool gradient_checkpointing = true; // recompute each layer in backward (less memory)
  // With gradient_checkpointing: recompute layers 0, N, 2N, ... in backward; 1 = every layer
  // (transformers); 2 = half the recompute for about half the memory saving.
  int64_t activation_checkpoint_every = 1;
  // The frozen base weights across ranks (FSDP's sharding strategies; docs/HPC.md has the memory
  // table): none = every rank holds the whole base (NO_SHARD); full = each rank holds 1/W of
  // every frozen weight and gathers a layer just before it runs (FULL_SHARD, ZeRO-3); hybrid =
  // shard within a group of ranks on one node, replicate across groups (HYBRID_SHARD), so the
  // gathers never cross the inter-node network. The LoRA weights stay replicated.
  std::string sharding = "none";
  // hybrid: ranks per shard group (torchtitan's data_parallel_shard_degree); 0 = the ranks of
  // one node. Must divide the ranks of a node (a group never spans nodes).
  int64_t data_parallel_shard_degree = 0;
  int64_t eval_every = 0;             // optimizer steps between evals; 0 = only at the end
  uint64_t seed = 42;                 // LoRA init (rank 0's, broadcast) and dropout (seed + rank)
  int64_t threads = 0;                // CPU intra-op threads per rank; 0 = the CPUs the launcher bound the rank to, else cores / ranks on the node
  double loss_scale_init = 65536.0;   // fp16 dynamic loss scale start
  int64_t loss_scale_growth_interval = 2000;  // clean steps before the scale doubles
  int64_t max_nonfinite_steps = 20;   // consecutive skipped steps before the run stops
  bool deterministic = false;         // deterministic kernels (tests; slower on GPU)
  double peak_tflops = 0;             // per-GPU dense peak for MFU; 0 = from the GPU's name (H100/H200/A100)
  // Seconds one collective may take on a rank before the job is aborted (MPI_Abort, or the NCCL
  // watchdog), naming the collective, the step and the ranks that had not arrived; both backends.
  // Raise it when ranks legitimately drift apart by more: a slow model load or checkpoint write on
  // one node, rank 0's checkpoint write while the others wait. (Was train.nccl_timeout.)
  double collective_timeout = 600;

  // The [train] keys, in config-file order, with their help.
  static const std::vector<OptionField<TrainSection>>& fields();
};

// [checkpoint]: where and how often state is saved.
struct CheckpointSection {
  std::string output_dir = "out/run";  // checkpoint-STEP/ folders, metrics, final adapter
  int64_t save_every = 0;              // optimizer steps between checkpoints; 0 = only at the end
  int64_t keep_last = 2;               // complete checkpoints kept; older ones are deleted
  std::string resume;                  // "" = fresh run | "latest" | path to checkpoint-STEP

  // The [checkpoint] keys, in config-file order, with their help.
  static const std::vector<OptionField<CheckpointSection>>& fields();
};

// [generate]: the sampled generation test after training. Its knobs (max_new_tokens and the
// sampling options) are GenerateOptions (generate/generate_options.h), the same definitions as
// `dtune generate`'s flags; the config adds whether to run it and on which prompt.
struct GenerateSection : GenerateOptions {
  bool enabled = true;                 // run it on rank 0 at the end of `dtune train`
  std::string prompt =
      "A 45-year-old presents with sudden, sharp chest pain that worsens on deep breathing, "
      "with shortness of breath and anxiety. What is the most likely diagnosis, and which tests "
      "should be ordered at once?";
  std::string prompt_template = "recipe";  // how the prompt is wrapped: recipe | r1-chat | chat | none

  // The [generate] keys, in config-file order, with their help. enabled, prompt, prompt_template, then
  // GenerateOptions::fields().
  static const std::vector<OptionField<GenerateSection>>& fields();
};

// [log]: what the user watches.
struct LogSection {
  int64_t log_every = 1;               // optimizer steps between log lines (non-TTY)
  std::string progress = "auto";       // auto (bar on a TTY) | bar | lines | off
  bool tensorboard = true;             // write TensorBoard event files in output_dir/tb

  // The [log] keys, in config-file order, with their help.
  static const std::vector<OptionField<LogSection>>& fields();
};

struct Config {
  ModelSection model;
  LoraSection lora;
  DataSection data;
  TrainSection train;
  CheckpointSection checkpoint;
  GenerateSection generate;
  LogSection log;
};

// Each section's checks. Throw dtune::Error naming the first bad option as names spells it
// ("option train.learning_rate must be > 0, got -1"), its value and the accepted range; every rule
// involves one section's keys only. Defined in src/config/validate.cpp.
void validate(const ModelSection& model, const OptionNames& names = OptionNames::config_section("model"));
void validate(const LoraSection& lora, const OptionNames& names = OptionNames::config_section("lora"));
void validate(const DataSection& data, const OptionNames& names = OptionNames::config_section("data"));
void validate(const TrainSection& train, const OptionNames& names = OptionNames::config_section("train"));
void validate(const CheckpointSection& checkpoint,
              const OptionNames& names = OptionNames::config_section("checkpoint"));
void validate(const GenerateSection& generate, const OptionNames& names = OptionNames::config_section("generate"));
void validate(const LogSection& log, const OptionNames& names = OptionNames::config_section("log"));

// Every section's validate(), in config-file order: the first bad option throws.
void validate(const Config& config);

}  // namespace dtune
