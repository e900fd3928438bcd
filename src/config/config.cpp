// The config sections' keys: each section's fields() with the help `dtune train --help` prints
// (config.h). The option table (config_parser.cpp) is these lists, section by section.
#include "dtune/config/config.h"

namespace dtune {

#define DTUNE_FIELD(Section, member, help) DTUNE_OPTION_FIELD(Section, #member, member, help)

const std::vector<OptionField<ModelSection>>& ModelSection::fields() {
  static const std::vector<OptionField<ModelSection>> fields = {
      DTUNE_FIELD(ModelSection, path, "Hugging Face model folder (config.json + *.safetensors)"),
      DTUNE_FIELD(ModelSection, tokenizer, "tokenizer.json or its folder; empty = model.path"),
      DTUNE_FIELD(ModelSection, attention,
                  "kernel policy: auto (dtune's kernels where they apply: fused CPU attention, RMSNorm, RoPE, "
                  "SwiGLU, cross-entropy, few-row decoding products; flash-varlen CUDA attention) | reference "
                  "(libtorch's reference for every one; old name: sdpa)"),
  };
  return fields;
}

const std::vector<OptionField<LoraSection>>& LoraSection::fields() {
  static const std::vector<OptionField<LoraSection>> fields = [] {
    std::vector<OptionField<LoraSection>> f =
        nest_option_fields<LoraSection>(LoraOptions::fields(), [](LoraSection& s) -> LoraOptions& { return s; });
    f.push_back(DTUNE_FIELD(LoraSection, init_adapter, "PEFT adapter folder to start from; empty = fresh adapter"));
    return f;
  }();
  return fields;
}

const std::vector<OptionField<DataSection>>& DataSection::fields() {
  static const std::vector<OptionField<DataSection>> fields = {
      DTUNE_FIELD(DataSection, path, "pre-tokenized HDF5 file from `dtune pretokenize`"),
      DTUNE_FIELD(DataSection, micro_batch_size, "rows per rank per micro-step"),
      DTUNE_FIELD(DataSection, packing, "pack rows into data.pack_length sequences"),
      DTUNE_FIELD(DataSection, pack_length, "tokens per packed sequence"),
      DTUNE_FIELD(DataSection, group_by_length, "padded batches: group rows of similar length"),
      DTUNE_FIELD(DataSection, shuffle, "shuffle rows every epoch"),
      DTUNE_FIELD(DataSection, seed, "shuffle seed"),
  };
  return fields;
}

const std::vector<OptionField<TrainSection>>& TrainSection::fields() {
  static const std::vector<OptionField<TrainSection>> fields = {
      DTUNE_FIELD(TrainSection, precision, "fp16 | bf16 | fp32"),
      DTUNE_FIELD(TrainSection, device, "auto | cpu | cuda"),
      DTUNE_FIELD(TrainSection, epochs, "passes over the train split"),
      DTUNE_FIELD(TrainSection, max_steps, "optimizer steps; -1 = run train.epochs"),
      DTUNE_FIELD(TrainSection, gradient_accumulation_steps, "micro-steps per optimizer step"),
      DTUNE_FIELD(TrainSection, learning_rate, "peak learning rate"),
      DTUNE_FIELD(TrainSection, weight_decay, "AdamW weight decay"),
      DTUNE_FIELD(TrainSection, adam_beta1, "AdamW beta1"),
      DTUNE_FIELD(TrainSection, adam_beta2, "AdamW beta2"),
      DTUNE_FIELD(TrainSection, adam_epsilon, "AdamW epsilon"),
      DTUNE_FIELD(TrainSection, warmup_ratio, "warmup as a fraction of total steps"),
      DTUNE_FIELD(TrainSection, warmup_steps, "warmup steps; overrides warmup_ratio when > 0"),
      DTUNE_FIELD(TrainSection, lr_scheduler, "linear | cosine | constant"),
      DTUNE_FIELD(TrainSection, max_grad_norm, "global gradient-norm clip; 0 = off"),
      DTUNE_FIELD(TrainSection, gradient_checkpointing, "recompute layers in backward"),
      DTUNE_FIELD(TrainSection, sharding,
                  "frozen base weights across ranks: none | full (FSDP FULL_SHARD) | hybrid (HYBRID_SHARD: shard "
                  "within a node, replicate across nodes)"),
      DTUNE_FIELD(TrainSection, data_parallel_shard_degree,
                  "hybrid: ranks per shard group, dividing a node's ranks (0 = a node)"),
      DTUNE_FIELD(TrainSection, activation_checkpoint_every,
                  "with gradient_checkpointing: recompute every Nth layer (1 = all)"),
      DTUNE_FIELD(TrainSection, eval_every, "optimizer steps between evals; 0 = at the end only"),
      DTUNE_FIELD(TrainSection, seed, "seed for LoRA init and dropout"),
      DTUNE_FIELD(TrainSection, threads,
                  "CPU threads per rank; 0 = the CPUs the launcher bound this rank to, else cores / ranks on the "
                  "node"),
      DTUNE_FIELD(TrainSection, loss_scale_init, "fp16 initial loss scale"),
      DTUNE_FIELD(TrainSection, loss_scale_growth_interval, "fp16 clean steps before the scale doubles"),
      DTUNE_FIELD(TrainSection, max_nonfinite_steps, "consecutive skipped steps before the run stops"),
      DTUNE_FIELD(TrainSection, deterministic, "deterministic kernels"),
      DTUNE_FIELD(TrainSection, peak_tflops, "per-GPU peak TFLOP/s for MFU; 0 = known GPUs by name"),
      DTUNE_FIELD(TrainSection, collective_timeout,
                  "seconds a collective (MPI or NCCL) may wait before the job is aborted, naming the ranks that "
                  "had not arrived"),
  };
  return fields;
}

const std::vector<OptionField<CheckpointSection>>& CheckpointSection::fields() {
  static const std::vector<OptionField<CheckpointSection>> fields = {
      DTUNE_FIELD(CheckpointSection, output_dir, "run folder: checkpoints, metrics, final adapter"),
      DTUNE_FIELD(CheckpointSection, save_every, "optimizer steps between checkpoints; 0 = at the end only"),
      DTUNE_FIELD(CheckpointSection, keep_last, "complete checkpoints to keep"),
      DTUNE_FIELD(CheckpointSection, resume, "\"\" | latest | path to checkpoint-STEP"),
  };
  return fields;
}

const std::vector<OptionField<GenerateSection>>& GenerateSection::fields() {
  static const std::vector<OptionField<GenerateSection>> fields = [] {
    std::vector<OptionField<GenerateSection>> f = {
        DTUNE_FIELD(GenerateSection, enabled, "run the generation test after training"),
        DTUNE_FIELD(GenerateSection, prompt, "the test question"),
        DTUNE_FIELD(GenerateSection, prompt_template, "recipe | r1-chat | chat | none"),
    };
    for (auto& g : nest_option_fields<GenerateSection>(GenerateOptions::fields(),
                                                         [](GenerateSection& s) -> GenerateOptions& { return s; }))
      f.push_back(std::move(g));
    return f;
  }();
  return fields;
}

const std::vector<OptionField<LogSection>>& LogSection::fields() {
  static const std::vector<OptionField<LogSection>> fields = {
      DTUNE_FIELD(LogSection, log_every, "optimizer steps between log lines"),
      DTUNE_FIELD(LogSection, progress, "auto | bar | lines | off"),
      DTUNE_FIELD(LogSection, tensorboard, "write TensorBoard event files"),
  };
  return fields;
}

#undef DTUNE_FIELD

}  // namespace dtune
