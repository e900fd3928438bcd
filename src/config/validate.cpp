// validate(): rejects bad values and bad combinations before any heavy work starts, one function
// per config section. Each message names the option (as names spells it), the value and the
// accepted range.
#include "dtune/config/config.h"
#include "dtune/core/device_request.h"
#include "dtune/core/error.h"
#include "dtune/core/option_field.h"
#include "dtune/kernels/kernel_policy.h"

namespace dtune {

void validate(const ModelSection& m, const OptionNames& names) {
  require_option(!m.path.empty(), names("path"), "''", "must name a Hugging Face model folder");
  kernel_policy_from_name(m.attention, names("attention"));  // throws for any other value
}

void validate(const LoraSection& l, const OptionNames& names) { validate(static_cast<const LoraOptions&>(l), names); }

void validate(const DataSection& d, const OptionNames& names) {
  require_option(!d.path.empty(), names("path"), "''", "must name the HDF5 file from `dtune pretokenize`");
  require_option(d.micro_batch_size > 0, names("micro_batch_size"), d.micro_batch_size, "must be > 0");
  require_option(d.pack_length >= 16, names("pack_length"), d.pack_length, "must be >= 16");
  require_option(!(d.packing && d.group_by_length), names("group_by_length"), "true",
                 str("applies to padded batches only; set it to false when ", names("packing"), " = true").c_str());
}

void validate(const TrainSection& t, const OptionNames& names) {
  require_option_one_of(t.precision, names("precision"), {"fp16", "bf16", "fp32"});
  parse_device_request(t.device, names("device"), /*allow_index=*/false);  // throws for any other value
  require_option_one_of(t.lr_scheduler, names("lr_scheduler"), {"linear", "cosine", "constant"});
  require_option(t.epochs > 0, names("epochs"), t.epochs, "must be > 0");
  require_option(t.max_steps == -1 || t.max_steps > 0, names("max_steps"), t.max_steps,
                 "must be -1 (use epochs) or > 0");
  require_option(t.gradient_accumulation_steps > 0, names("gradient_accumulation_steps"),
                 t.gradient_accumulation_steps, "must be > 0");
  require_option(t.learning_rate > 0, names("learning_rate"), t.learning_rate, "must be > 0");
  require_option(t.weight_decay >= 0, names("weight_decay"), t.weight_decay, "must be >= 0");
  require_option(t.adam_beta1 >= 0 && t.adam_beta1 < 1, names("adam_beta1"), t.adam_beta1, "must be in [0, 1)");
  require_option(t.adam_beta2 >= 0 && t.adam_beta2 < 1, names("adam_beta2"), t.adam_beta2, "must be in [0, 1)");
  require_option(t.adam_epsilon > 0, names("adam_epsilon"), t.adam_epsilon, "must be > 0");
  require_option(t.warmup_ratio >= 0 && t.warmup_ratio < 1, names("warmup_ratio"), t.warmup_ratio,
                 "must be in [0, 1)");
  require_option(t.warmup_steps >= 0, names("warmup_steps"), t.warmup_steps, "must be >= 0");
  require_option(t.max_grad_norm >= 0, names("max_grad_norm"), t.max_grad_norm, "must be >= 0 (0 = no clipping)");
  require_option(t.eval_every >= 0, names("eval_every"), t.eval_every, "must be >= 0");
  require_option(t.threads >= 0, names("threads"), t.threads, "must be >= 0 (0 = automatic)");
  require_option(t.loss_scale_init >= 1, names("loss_scale_init"), t.loss_scale_init, "must be >= 1");
  require_option(t.loss_scale_growth_interval > 0, names("loss_scale_growth_interval"),
                 t.loss_scale_growth_interval, "must be > 0");
  require_option(t.peak_tflops >= 0, names("peak_tflops"), t.peak_tflops, "must be >= 0 (0 = by GPU name)");
  require_option(t.collective_timeout > 0, names("collective_timeout"), t.collective_timeout,
                 "must be > 0 seconds (raise it when a rank legitimately stalls, e.g. a slow checkpoint)");
  require_option(t.activation_checkpoint_every >= 1, names("activation_checkpoint_every"),
                 t.activation_checkpoint_every, "must be >= 1 (1 = recompute every layer)");
  require_option_one_of(t.sharding, names("sharding"), {"none", "full", "hybrid"});
  require_option(t.data_parallel_shard_degree >= 0, names("data_parallel_shard_degree"),
                 t.data_parallel_shard_degree, "must be >= 0 (0 = the ranks of one node)");
  require_option(t.data_parallel_shard_degree == 0 || t.sharding == "hybrid", names("data_parallel_shard_degree"),
                 t.data_parallel_shard_degree,
                 str("applies to ", names("sharding"), "=hybrid only (full shards over every rank)").c_str());
  require_option(t.max_nonfinite_steps > 0, names("max_nonfinite_steps"), t.max_nonfinite_steps, "must be > 0");
}

void validate(const CheckpointSection& c, const OptionNames& names) {
  require_option(!c.output_dir.empty(), names("output_dir"), "''", "must name a folder");
  require_option(c.save_every >= 0, names("save_every"), c.save_every, "must be >= 0");
  require_option(c.keep_last >= 1, names("keep_last"), c.keep_last, "must be >= 1");
}

void validate(const GenerateSection& g, const OptionNames& names) {
  require_option_one_of(g.prompt_template, names("prompt_template"), {"recipe", "r1-chat", "chat", "none"});
  validate(static_cast<const GenerateOptions&>(g), names);
  require_option(!(g.enabled && g.prompt.empty()), names("prompt"), "''",
                 str("must be set when ", names("enabled"), " = true").c_str());
}

void validate(const LogSection& l, const OptionNames& names) {
  require_option(l.log_every > 0, names("log_every"), l.log_every, "must be > 0");
  require_option_one_of(l.progress, names("progress"), {"auto", "bar", "lines", "off"});
}

void validate(const Config& c) {
  validate(c.model);
  validate(c.lora);
  validate(c.data);
  validate(c.train);
  validate(c.checkpoint);
  validate(c.generate);
  validate(c.log);
}

}  // namespace dtune
