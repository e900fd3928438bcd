// validate(): rejects bad values and bad combinations before any heavy work starts. Each
// message names the option, the value and the accepted range.
#include <algorithm>
#include <set>

#include "dtune/config/config.h"
#include "dtune/core/error.h"

namespace dtune {
namespace {

template <typename T>
void require(bool ok, const char* option, const T& value, const char* rule) {
  if (!ok) throw Error(dtune::str("option ", option, " ", rule, ", got ", value));
}

void require_one_of(const std::string& value, const char* option, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (value == a) return;
  std::string list;
  for (const char* a : allowed) list += (list.empty() ? "" : " | ") + std::string(a);
  throw Error(dtune::str("option ", option, " must be one of ", list, ", got '", value, "'"));
}

}  // namespace

void validate(const Config& c) {
  require(!c.model.path.empty(), "model.path", "''", "must name a Hugging Face model folder");
  require_one_of(c.model.attention, "model.attention", {"auto", "sdpa"});

  require(c.lora.r > 0, "lora.r", c.lora.r, "must be > 0");
  require(c.lora.alpha > 0, "lora.alpha", c.lora.alpha, "must be > 0");
  require(c.lora.dropout >= 0 && c.lora.dropout < 1, "lora.dropout", c.lora.dropout, "must be in [0, 1)");
  require(!c.lora.target_modules.empty(), "lora.target_modules", "''", "must list at least one module");
  static const std::set<std::string> kModules = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  std::set<std::string> seen;
  for (const std::string& m : c.lora.target_modules) {
    if (!kModules.count(m))
      throw Error(dtune::str("option lora.target_modules: unknown module '", m,
                             "' (allowed: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)"));
    if (!seen.insert(m).second)
      throw Error(dtune::str("option lora.target_modules: '", m, "' is listed twice"));
  }

  require(!c.data.path.empty(), "data.path", "''", "must name the HDF5 file from `dtune pretokenize`");
  require(c.data.micro_batch_size > 0, "data.micro_batch_size", c.data.micro_batch_size, "must be > 0");
  require(c.data.pack_length >= 16, "data.pack_length", c.data.pack_length, "must be >= 16");
  require(!(c.data.packing && c.data.group_by_length), "data.group_by_length", "true",
          "applies to padded batches only; set it to false when data.packing = true");

  const TrainSection& t = c.train;
  require_one_of(t.precision, "train.precision", {"fp16", "bf16", "fp32"});
  require_one_of(t.device, "train.device", {"auto", "cpu", "cuda"});
  require_one_of(t.lr_scheduler, "train.lr_scheduler", {"linear", "cosine", "constant"});
  require(t.epochs > 0, "train.epochs", t.epochs, "must be > 0");
  require(t.max_steps == -1 || t.max_steps > 0, "train.max_steps", t.max_steps, "must be -1 (use epochs) or > 0");
  require(t.gradient_accumulation_steps > 0, "train.gradient_accumulation_steps", t.gradient_accumulation_steps, "must be > 0");
  require(t.learning_rate > 0, "train.learning_rate", t.learning_rate, "must be > 0");
  require(t.weight_decay >= 0, "train.weight_decay", t.weight_decay, "must be >= 0");
  require(t.adam_beta1 >= 0 && t.adam_beta1 < 1, "train.adam_beta1", t.adam_beta1, "must be in [0, 1)");
  require(t.adam_beta2 >= 0 && t.adam_beta2 < 1, "train.adam_beta2", t.adam_beta2, "must be in [0, 1)");
  require(t.adam_epsilon > 0, "train.adam_epsilon", t.adam_epsilon, "must be > 0");
  require(t.warmup_ratio >= 0 && t.warmup_ratio < 1, "train.warmup_ratio", t.warmup_ratio, "must be in [0, 1)");
  require(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "must be >= 0");
  require(t.max_grad_norm >= 0, "train.max_grad_norm", t.max_grad_norm, "must be >= 0 (0 = no clipping)");
  require(t.eval_every >= 0, "train.eval_every", t.eval_every, "must be >= 0");
  require(t.threads >= 0, "train.threads", t.threads, "must be >= 0 (0 = automatic)");
  require(t.loss_scale_init >= 1, "train.loss_scale_init", t.loss_scale_init, "must be >= 1");
  require(t.loss_scale_growth_interval > 0, "train.loss_scale_growth_interval", t.loss_scale_growth_interval, "must be > 0");
  require(t.peak_tflops >= 0, "train.peak_tflops", t.peak_tflops, "must be >= 0 (0 = by GPU name)");
  require(t.collective_timeout > 0, "train.collective_timeout", t.collective_timeout,
          "must be > 0 seconds (raise it when a rank legitimately stalls, e.g. a slow checkpoint)");
  require(t.activation_checkpoint_every >= 1, "train.activation_checkpoint_every", t.activation_checkpoint_every,
          "must be >= 1 (1 = recompute every layer)");
  require_one_of(t.sharding, "train.sharding", {"none", "full", "hybrid"});
  require(t.data_parallel_shard_degree >= 0, "train.data_parallel_shard_degree", t.data_parallel_shard_degree,
          "must be >= 0 (0 = the ranks of one node)");
  require(t.data_parallel_shard_degree == 0 || t.sharding == "hybrid", "train.data_parallel_shard_degree",
          t.data_parallel_shard_degree, "applies to train.sharding=hybrid only (full shards over every rank)");
  require(t.max_nonfinite_steps > 0, "train.max_nonfinite_steps", t.max_nonfinite_steps, "must be > 0");

  require(!c.checkpoint.output_dir.empty(), "checkpoint.output_dir", "''", "must name a folder");
  require(c.checkpoint.save_every >= 0, "checkpoint.save_every", c.checkpoint.save_every, "must be >= 0");
  require(c.checkpoint.keep_last >= 1, "checkpoint.keep_last", c.checkpoint.keep_last, "must be >= 1");

  const GenerateSection& g = c.generate;
  require_one_of(g.prompt_template, "generate.prompt_template", {"recipe", "r1-chat", "chat", "none"});
  require(g.max_new_tokens > 0, "generate.max_new_tokens", g.max_new_tokens, "must be > 0");
  require(g.temperature >= 0, "generate.temperature", g.temperature, "must be >= 0 (0 = greedy)");
  require(g.top_p > 0 && g.top_p <= 1, "generate.top_p", g.top_p, "must be in (0, 1]");
  require(g.top_k >= 0, "generate.top_k", g.top_k, "must be >= 0 (0 = off)");
  require(g.repetition_penalty > 0, "generate.repetition_penalty", g.repetition_penalty, "must be > 0");
  require(!(g.enabled && g.prompt.empty()), "generate.prompt", "''", "must be set when generate.enabled = true");

  require(c.log.log_every > 0, "log.log_every", c.log.log_every, "must be > 0");
  require_one_of(c.log.progress, "log.progress", {"auto", "bar", "lines", "off"});
}

}  // namespace dtune
