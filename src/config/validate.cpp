// validate(): rejects bad values and bad combinations before any heavy work starts. Each
// message names the option, the value and the accepted range.
#include "dtune/config/config.h"
#include "dtune/core/device_request.h"
#include "dtune/core/error.h"
#include "dtune/core/option_field.h"
#include "dtune/kernels/kernel_policy.h"

namespace dtune {
void validate(const Config& c) {
  require_option(!c.model.path.empty(), "model.path", "''", "must name a Hugging Face model folder");
  kernel_policy_from_name(c.model.attention, "model.attention");  // throws for any other value

  validate(static_cast<const LoraOptions&>(c.lora), OptionNames::config_section("lora"));

  require_option(!c.data.path.empty(), "data.path", "''", "must name the HDF5 file from `dtune pretokenize`");
  require_option(c.data.micro_batch_size > 0, "data.micro_batch_size", c.data.micro_batch_size, "must be > 0");
  require_option(c.data.pack_length >= 16, "data.pack_length", c.data.pack_length, "must be >= 16");
  require_option(!(c.data.packing && c.data.group_by_length), "data.group_by_length", "true",
          "applies to padded batches only; set it to false when data.packing = true");

  const TrainSection& t = c.train;
  require_option_one_of(t.precision, "train.precision", {"fp16", "bf16", "fp32"});
  parse_device_request(t.device, "train.device", /*allow_index=*/false);  // throws for any other value
  require_option_one_of(t.lr_scheduler, "train.lr_scheduler", {"linear", "cosine", "constant"});
  require_option(t.epochs > 0, "train.epochs", t.epochs, "must be > 0");
  require_option(t.max_steps == -1 || t.max_steps > 0, "train.max_steps", t.max_steps, "must be -1 (use epochs) or > 0");
  require_option(t.gradient_accumulation_steps > 0, "train.gradient_accumulation_steps", t.gradient_accumulation_steps, "must be > 0");
  require_option(t.learning_rate > 0, "train.learning_rate", t.learning_rate, "must be > 0");
  require_option(t.weight_decay >= 0, "train.weight_decay", t.weight_decay, "must be >= 0");
  require_option(t.adam_beta1 >= 0 && t.adam_beta1 < 1, "train.adam_beta1", t.adam_beta1, "must be in [0, 1)");
  require_option(t.adam_beta2 >= 0 && t.adam_beta2 < 1, "train.adam_beta2", t.adam_beta2, "must be in [0, 1)");
  require_option(t.adam_epsilon > 0, "train.adam_epsilon", t.adam_epsilon, "must be > 0");
  require_option(t.warmup_ratio >= 0 && t.warmup_ratio < 1, "train.warmup_ratio", t.warmup_ratio, "must be in [0, 1)");
  require_option(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "must be >= 0");
  require_option(t.max_grad_norm >= 0, "train.max_grad_norm", t.max_grad_norm, "must be >= 0 (0 = no clipping)");
  require_option(t.eval_every >= 0, "train.eval_every", t.eval_every, "must be >= 0");
  require_option(t.threads >= 0, "train.threads", t.threads, "must be >= 0 (0 = automatic)");
  require_option(t.loss_scale_init >= 1, "train.loss_scale_init", t.loss_scale_init, "must be >= 1");
  require_option(t.loss_scale_growth_interval > 0, "train.loss_scale_growth_interval", t.loss_scale_growth_interval, "must be > 0");
  require_option(t.peak_tflops >= 0, "train.peak_tflops", t.peak_tflops, "must be >= 0 (0 = by GPU name)");
  require_option(t.collective_timeout > 0, "train.collective_timeout", t.collective_timeout,
                 "must be > 0 seconds (raise it when a rank legitimately stalls, e.g. a slow checkpoint)");
  require_option(t.activation_checkpoint_every >= 1, "train.activation_checkpoint_every", t.activation_checkpoint_every,
          "must be >= 1 (1 = recompute every layer)");
  require_option_one_of(t.sharding, "train.sharding", {"none", "full", "hybrid"});
  require_option(t.data_parallel_shard_degree >= 0, "train.data_parallel_shard_degree", t.data_parallel_shard_degree,
                 "must be >= 0 (0 = the ranks of one node)");
  require_option(t.data_parallel_shard_degree == 0 || t.sharding == "hybrid", "train.data_parallel_shard_degree",
                 t.data_parallel_shard_degree, "applies to train.sharding=hybrid only (full shards over every rank)");
  require_option(t.max_nonfinite_steps > 0, "train.max_nonfinite_steps", t.max_nonfinite_steps, "must be > 0");

  require_option(!c.checkpoint.output_dir.empty(), "checkpoint.output_dir", "''", "must name a folder");
  require_option(c.checkpoint.save_every >= 0, "checkpoint.save_every", c.checkpoint.save_every, "must be >= 0");
  require_option(c.checkpoint.keep_last >= 1, "checkpoint.keep_last", c.checkpoint.keep_last, "must be >= 1");

  const GenerateSection& g = c.generate;
  require_option_one_of(g.prompt_template, "generate.prompt_template", {"recipe", "r1-chat", "chat", "none"});
  validate(static_cast<const GenerateOptions&>(g), OptionNames::config_section("generate"));
  require_option(!(g.enabled && g.prompt.empty()), "generate.prompt", "''", "must be set when generate.enabled = true");

  require_option(c.log.log_every > 0, "log.log_every", c.log.log_every, "must be > 0");
  require_option_one_of(c.log.progress, "log.progress", {"auto", "bar", "lines", "off"});
}

}  // namespace dtune
