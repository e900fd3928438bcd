// The training recipe; see trainer.h. Each block below is one stage of the run, in order.
#include "dtune/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>

#include "dtune/config/config_parser.h"
#include "dtune/core/cpus.h"
#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/data/batcher.h"
#include "dtune/data/hdf5_dataset.h"
#include "dtune/data/sampler.h"
#include "dtune/dist/communicator.h"
#include "dtune/dist/device.h"
#include "dtune/dist/mpi_env.h"
#include "dtune/generate/chat_format.h"
#include "dtune/generate/generator.h"
#include "dtune/io/peft_adapter.h"
#include "dtune/lora/lora_linear.h"
#include "dtune/model/decoder.h"
#include "dtune/tokenizer/tokenizer.h"
#include "dtune/train/adamw.h"
#include "dtune/train/batch_tensors.h"
#include "dtune/train/checkpoint.h"
#include "dtune/train/evaluate.h"
#include "dtune/train/gpu_peak.h"
#include "dtune/train/loss_scaler.h"
#include "dtune/train/lr_schedule.h"
#include "dtune/train/metrics_log.h"
#include "dtune/train/optimizer_step.h"
#include "dtune/train/param_bucket.h"
#include "dtune/train/preemption.h"


namespace dtune {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

c10::ScalarType precision_dtype(const std::string& p) {
  if (p == "fp16") return at::kHalf;
  if (p == "bf16") return at::kBFloat16;
  return at::kFloat;
}

AdapterConfig adapter_config(const Config& c) {
  AdapterConfig a;
  a.r = c.lora.r;
  a.alpha = c.lora.alpha;
  a.dropout = c.lora.dropout;
  a.target_modules = c.lora.target_modules;
  a.use_rslora = c.lora.use_rslora;
  a.base_model_name_or_path = c.model.path;
  return a;
}

// Model FLOPs of one training pass over batch, as MFU counts them (docs/TRAINING.md): 4N per
// non-padding token (forward 2N, backward to the activations 2N; the frozen base weights get no
// weight gradient) plus causal attention, 6 * layers * heads * head_dim * n^2 per row of n tokens
// (forward QK^T and PV, backward twice that). Recomputation for checkpointing is not counted.
double training_flops(const Batch& batch, const ModelConfig& c, int64_t n_params) {
  const double attn_width = static_cast<double>(c.num_attention_heads * c.head_dim);
  double flops = 0;
  for (int64_t b = 0; b < batch.batch_size; ++b) {
    const int32_t* ids = batch.sequence_ids.data() + b * batch.seq_len;
    int64_t run = 0;
    for (int64_t t = 0; t <= batch.seq_len; ++t) {
      const bool same = t < batch.seq_len && t > 0 && ids[t] == ids[t - 1];
      if (t > 0 && !same && ids[t - 1] >= 0) {  // a row ended at t - 1
        const double n = static_cast<double>(run);
        flops += 4.0 * static_cast<double>(n_params) * n + 6.0 * static_cast<double>(c.num_hidden_layers) * attn_width * n * n;
      }
      run = same ? run + 1 : 1;
    }
  }
  return flops;
}

// Micro-batches every rank runs in epoch: the minimum over ranks (packing can differ by rank).
int64_t micro_batches_in_epoch(const Batcher& batcher, dist::Communicator& comm, int64_t epoch) {
  const double mine = static_cast<double>(batcher.batches_in_epoch(epoch));
  return static_cast<int64_t>(-comm.all_reduce_scalar(-mine, dist::ReduceOp::kMax));
}

}  // namespace

int run_training(const Config& cfg, dist::MpiEnv& env) {
  validate(cfg);
  const double t_start = now_s();
  // First, so that a signal arriving during the (long) setup is honoured, not fatal.
  install_preemption_handlers();

  // ---- Device, threads, communicator -------------------------------------------------------
  const c10::Device device = dist::select_device(cfg.train.device, env.local_rank());
  const int threads = cfg.train.threads > 0
                          ? static_cast<int>(cfg.train.threads)
                          : default_threads_per_rank(env.local_size());
  if (device.is_cpu()) at::set_num_threads(threads);
  if (cfg.train.deterministic) {
    // cuBLAS is deterministic only with a fixed workspace; it reads this before its first GEMM
    // (none has run yet). A value the user exported is kept.
    if (device.is_cuda()) DTUNE_CHECK(setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0) == 0, "setenv failed");
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
  }
  std::unique_ptr<dist::Communicator> comm =
      device.is_cuda() ? env.make_nccl_communicator(device.index(), cfg.train.nccl_timeout)
      : env.world_size() > 1 ? env.make_mpi_communicator()
                             : dist::make_single_process_communicator();
  const int rank = comm->rank(), world = comm->world_size();
  log::info(dtune::str("dtune train: ", world, " rank(s), ", comm->backend(), " communicator, device ", device,
                       device.is_cpu() ? dtune::str(", ", threads, " threads/rank") : std::string()));

  // ---- Data: this rank's shard of the pre-tokenized file ------------------------------------
  const Hdf5Dataset train_data = Hdf5Dataset::open(cfg.data.path, "train");
  SamplerOptions sampler_opts;
  sampler_opts.seed = cfg.data.seed;
  sampler_opts.shuffle = cfg.data.shuffle;
  const ShardSampler sampler(train_data.num_rows(), rank, world, sampler_opts);
  BatcherOptions batch_opts;
  batch_opts.batch_size = cfg.data.micro_batch_size;
  batch_opts.pack = cfg.data.packing;
  batch_opts.pack_length = cfg.data.pack_length;
  batch_opts.group_window = cfg.data.group_by_length ? 16 : 0;
  const PretokenizedInfo& info = train_data.info();
  batch_opts.pad_id = static_cast<int32_t>(info.pad_id >= 0 ? info.pad_id : std::max<int64_t>(info.eos_id, 0));
  Batcher batcher(train_data, sampler, batch_opts);

  // ---- Model and adapter ---------------------------------------------------------------------
  DecoderOptions model_opts;
  model_opts.dtype = precision_dtype(cfg.train.precision);
  model_opts.device = device;
  model_opts.activation_checkpointing = cfg.train.gradient_checkpointing;
  model_opts.checkpoint_every = cfg.train.checkpoint_every;
  model_opts.fused_cpu_attention = cfg.model.attention == "auto";
  // Flash attention (varlen for packed rows) needs Ampere or newer.
  model_opts.varlen_cuda_attention = cfg.model.attention == "auto" && (device.is_cpu() || dist::compute_capability(device) >= 80);
  Decoder model = Decoder::load(cfg.model.path, model_opts);
  DTUNE_CHECK(info.vocab_size <= model.config().vocab_size, "data.path ", cfg.data.path, " was tokenized with a ",
              info.vocab_size, "-token vocabulary but model.path ", cfg.model.path, " has ",
              model.config().vocab_size, ": pretokenize with this model's tokenizer");
  model.add_lora(LoraOptions::from_section(cfg.lora), cfg.train.seed);
  if (!cfg.lora.init_adapter.empty()) model.load_lora(load_peft_adapter(cfg.lora.init_adapter, device).tensors);
  ParamBucket bucket(model.lora_parameters());
  comm->broadcast(bucket.params(), 0);  // every rank starts from rank 0's adapter, bit for bit
  // NCCL connects and allocates its buffers on a collective's first use: run the gradient
  // all-reduce once now (on zeros), before activations fill the GPU, not first after a backward.
  comm->all_reduce(bucket.grads(), dist::ReduceOp::kSum);
  log::info(dtune::str("model ", cfg.model.path, " (", model.config().model_type, ", ",
                       model.num_parameters() / 1e6, "M params, ", cfg.train.precision, "); LoRA r=", cfg.lora.r,
                       ": ", model.num_lora_parameters(), " trainable params"));

  // ---- Optimizer, schedule, loss scale ----------------------------------------------------------
  AdamWOptions adam;
  adam.beta1 = cfg.train.adam_beta1;
  adam.beta2 = cfg.train.adam_beta2;
  adam.eps = cfg.train.adam_epsilon;
  adam.weight_decay = cfg.train.weight_decay;
  AdamW optimizer(bucket.params(), bucket.grads(), adam);
  // An epoch is the micro-batches every rank has (the minimum over ranks), grouped by accum; its
  // last optimizer step may take fewer micro-batches (the loss is normalised by tokens anyway).
  const int64_t accum = cfg.train.gradient_accumulation_steps;
  std::vector<int64_t> epoch_micro;  // micro-batches per epoch, computed on demand (collective)
  auto micro_in = [&](int64_t e) {
    while (static_cast<int64_t>(epoch_micro.size()) <= e)
      epoch_micro.push_back(micro_batches_in_epoch(batcher, *comm, static_cast<int64_t>(epoch_micro.size())));
    return epoch_micro[static_cast<size_t>(e)];
  };
  int64_t total_steps = 0;
  for (int64_t e = 0; e < cfg.train.epochs; ++e) total_steps += (micro_in(e) + accum - 1) / accum;
  DTUNE_CHECK(micro_in(0) > 0, "data.path ", cfg.data.path, " gives rank ", rank, " no batch");
  if (cfg.train.max_steps > 0) total_steps = cfg.train.max_steps;  // more epochs if needed
  const LrSchedule schedule(cfg.train.lr_scheduler, cfg.train.learning_rate, total_steps, cfg.train.warmup_steps,
                            cfg.train.warmup_ratio);
  LossScaler scaler(cfg.train.precision == "fp16", cfg.train.loss_scale_init, cfg.train.loss_scale_growth_interval);
  const double peak_tflops = resolve_peak_tflops(cfg.train.peak_tflops, device.is_cuda() ? dist::device_name(device) : "");

  // ---- Resume --------------------------------------------------------------------------------
  int64_t step = 0, epoch = 0, micro_in_epoch = 0;
  std::optional<std::string> resume_from;
  if (!cfg.checkpoint.resume.empty()) resume_from = find_checkpoint(cfg.checkpoint.output_dir, cfg.checkpoint.resume);
  if (resume_from) {
    const LoadedCheckpoint ck = load_checkpoint(*resume_from, rank, world, device);
    model.load_lora(ck.adapter);
    at::Tensor exp_avg, exp_avg_sq;
    for (const auto& [name, t] : ck.optimizer) (name == "exp_avg" ? exp_avg : exp_avg_sq) = t;
    optimizer.load_state(exp_avg, exp_avg_sq, ck.trainer.at("optimizer_steps").get<int64_t>());
    scaler.load_state(ck.trainer.at("loss_scaler"));
    step = ck.trainer.at("step").get<int64_t>();
    epoch = ck.trainer.at("epoch").get<int64_t>();
    micro_in_epoch = ck.trainer.at("micro_in_epoch").get<int64_t>();
    SamplerState reader = ck.rank_state.at("reader").get<SamplerState>();
    sampler.check_state(reader);
    batcher.restore(reader);
    restore_rng_state(device, ck.rank_state.at("rng"), *resume_from, cfg.train.seed + static_cast<uint64_t>(rank + step * world));
    log::info(dtune::str("resumed from ", *resume_from, " at step ", step, "/", total_steps));
  } else {
    at::manual_seed(cfg.train.seed + static_cast<uint64_t>(rank));  // dropout streams differ by rank
    if (cfg.checkpoint.resume == "latest") log::info("no checkpoint in " + cfg.checkpoint.output_dir + ": starting fresh");
  }

  // ---- What the user watches ----------------------------------------------------------------
  std::unique_ptr<MetricsLog> metrics;
  if (rank == 0) {
    MetricsOptions mo;
    mo.output_dir = cfg.checkpoint.output_dir;
    mo.tensorboard = cfg.log.tensorboard;
    mo.progress = cfg.log.progress;
    mo.log_every = cfg.log.log_every;
    mo.total_steps = total_steps;
    mo.resume_step = resume_from.has_value() ? step : -1;
    metrics = std::make_unique<MetricsLog>(mo);
    std::ofstream(cfg.checkpoint.output_dir + "/config.ini") << format_config(cfg);
    log::info(dtune::str(train_data.num_rows(), " train rows, ", world, " x ", cfg.data.micro_batch_size, " rows x ",
                         accum, " micro-steps per optimizer step; ", total_steps, " steps; warmup ",
                         schedule.warmup_steps(), "; output ", cfg.checkpoint.output_dir));
  }
  std::optional<Hdf5Dataset> eval_data;
  if (Hdf5Dataset::read_info(cfg.data.path).num_eval_rows > 0) eval_data.emplace(Hdf5Dataset::open(cfg.data.path, "eval"));
  auto run_eval = [&](int64_t at_step) {
    if (!eval_data) return;
    const double t_eval = now_s();
    const EvalResult r = evaluate(model, *eval_data, *comm, device, cfg.data.micro_batch_size);
    if (metrics) metrics->log_eval(at_step, {{"loss", r.loss}, {"perplexity", std::exp(r.loss)}, {"tokens", double(r.tokens)},
                                             {"eval_s", now_s() - t_eval}});
  };
  auto checkpoint_now = [&](const char* why) {
    CheckpointData data;
    data.step = step;
    data.trainer = {{"step", step}, {"epoch", epoch}, {"micro_in_epoch", micro_in_epoch},
                    {"optimizer_steps", optimizer.steps_taken()}, {"total_steps", total_steps},
                    {"loss_scaler", scaler.state()}, {"world_size", world}, {"dtune_version", DTUNE_VERSION}};
    data.adapter_config = adapter_config(cfg);
    for (const auto& [name, t] : bucket.named()) data.adapter.emplace_back(name, t.detach());
    data.optimizer = {{"exp_avg", optimizer.exp_avg()}, {"exp_avg_sq", optimizer.exp_avg_sq()}};
    data.config_ini = format_config(cfg);
    const RankState mine = {{"reader", batcher.state()}, {"rng", save_rng_state(device)}};
    const std::string path = save_checkpoint(*comm, cfg.checkpoint.output_dir, data, mine, cfg.checkpoint.keep_last);
    if (metrics) metrics->finish_line();
    log::info(dtune::str("checkpoint ", path, " (", why, ")"));
  };

  // ---- The loop ------------------------------------------------------------------------------
  model.set_training(true);
  int64_t nonfinite_streak = 0, tokens_since_log = 0;
  double flops_since_log = 0;
  double t_log = now_s();
  int64_t last_saved = resume_from ? step : -1;
  bool preempted = false;
  std::vector<Batch> micro(static_cast<size_t>(accum));
  while (step < total_steps) {
    if (micro_in_epoch >= micro_in(epoch)) {  // every rank moves on together
      ++epoch;
      micro_in_epoch = 0;
      batcher.restore(sampler.start_state(epoch));
    }
    const double t_step = now_s();
    // 1. This step's micro-batches and the global count of loss tokens (the normaliser).
    const int64_t n_micro = std::min(accum, micro_in(epoch) - micro_in_epoch);
    int64_t local_tokens = 0, local_real = 0;
    for (int64_t i = 0; i < n_micro; ++i) {
      DTUNE_CHECK(batcher.next(micro[i]), "internal: rank ", rank, " ran out of batches in epoch ", epoch);
      local_tokens += micro[i].num_loss_tokens;
      local_real += std::accumulate(micro[i].lengths.begin(), micro[i].lengths.end(), int64_t{0});
      flops_since_log += training_flops(micro[i], model.config(), model.num_parameters());
    }
    const double global_tokens = comm->all_reduce_scalar(static_cast<double>(local_tokens), dist::ReduceOp::kSum);
    // Every rank's non-padding tokens, for an exact job-wide tokens/s (ranks' padded batches differ).
    const double global_real = comm->all_reduce_scalar(static_cast<double>(local_real), dist::ReduceOp::kSum);
    DTUNE_CHECK(global_tokens > 0, "step ", step + 1, " has no loss tokens on any rank (all completions "
                "truncated?); raise --max-length in pretokenize");

    // 2. Forward/backward per micro-batch; the scaled loss sum / global tokens accumulates grads.
    bucket.zero_grads();
    at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device));
    const double loss_weight = scaler.scale() / global_tokens;
    {
      // No host synchronisation from here to the all-reduce (DTUNE_CUDA_SYNC_CHECK=1 proves it).
      const dist::HostSyncCheck no_host_sync(device);
      for (int64_t i = 0; i < n_micro; ++i) {
        const BatchTensors b = to_tensors(micro[i], cfg.data.packing, device);
        const at::Tensor hidden = model.forward_hidden(b.input_ids, b.position_ids, b.mask);
        const LossSum ls = model.loss(hidden, b.loss_targets);
        (ls.sum * loss_weight).backward();
        loss_sum += ls.sum.detach();
      }
    }
    micro_in_epoch += n_micro;

    // 3. One all-reduce of the flat gradient bucket; a NaN/inf on any rank reaches every rank.
    bucket.gather_grads();
    const double t_reduce = now_s();
    comm->all_reduce(bucket.grads(), dist::ReduceOp::kSum);
    // MPI: the whole collective, including waiting for the slowest rank. NCCL: launch only.
    const double reduce_s = now_s() - t_reduce;
    if (scaler.enabled()) bucket.grads().div_(scaler.scale());
    const double grad_norm = bucket.grads().norm().item<double>();

    // 4. Skip (fp16 overflow; the schedule does not advance) or clip and update.
    const OptimizerUpdate update =
        apply_optimizer_update(optimizer, scaler, schedule, bucket.grads(), grad_norm, cfg.train.max_grad_norm);
    const double lr = update.lr;
    if (update.applied) {
      nonfinite_streak = 0;
    } else {
      DTUNE_CHECK(++nonfinite_streak < cfg.train.max_nonfinite_steps, "the gradients were non-finite for ",
                  nonfinite_streak, " steps in a row (last loss scale ", scaler.scale(),
                  "): lower train.learning_rate, use train.precision=bf16, or check the data");
      log::warn(dtune::str("step ", step + 1, ": non-finite gradients, step skipped on every rank; loss scale now ",
                           scaler.scale()));
    }
    ++step;

    // 5. Report, eval, checkpoint, preemption.
    const double loss = comm->all_reduce_scalar(loss_sum.item<double>(), dist::ReduceOp::kSum) / global_tokens;
    tokens_since_log += static_cast<int64_t>(global_real);
    if (metrics) {
      const double dt = std::max(now_s() - t_log, 1e-9);
      const double tflops = flops_since_log / dt / 1e12;  // achieved on this rank's device
      Metrics m = {{"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm}, {"loss_scale", scaler.scale()},
                   {"tokens_per_s", tokens_since_log / dt},
                   {"epoch", epoch + static_cast<double>(micro_in_epoch) / static_cast<double>(micro_in(epoch))},
                   {"peak_mem_gib", dist::peak_memory_gib(device)}, {"step_s", now_s() - t_step}, {"allreduce_s", reduce_s},
                   {"tflops", tflops}};
      if (peak_tflops > 0) m.emplace_back("mfu", tflops / peak_tflops);
      metrics->log_step(step, m);
    }
    t_log = now_s();
    tokens_since_log = 0;
    flops_since_log = 0;
    if (cfg.train.eval_every > 0 && step % cfg.train.eval_every == 0 && step < total_steps) {
      run_eval(step);
      model.set_training(true);
    }
    if (cfg.checkpoint.save_every > 0 && step % cfg.checkpoint.save_every == 0 && step < total_steps) {
      checkpoint_now("save_every");
      last_saved = step;
    }
    if (comm->any(preemption_requested())) {
      if (last_saved != step) checkpoint_now("preempted");
      preempted = true;
      break;
    }
  }
  if (preempted) {
    log::info(dtune::str("preempted at step ", step, ": checkpoint written; exiting with code ", kExitPreempted,
                         " so the job script requeues"));
    return kExitPreempted;
  }

  // ---- The end: final eval, checkpoint, adapter, generation test -----------------------------
  if (last_saved != step) checkpoint_now("end of training");
  run_eval(step);
  if (rank == 0) {
    std::vector<std::pair<std::string, at::Tensor>> adapter;
    for (const auto& [name, t] : bucket.named()) adapter.emplace_back(name, t.detach());
    const std::string dir = cfg.checkpoint.output_dir + "/adapter";
    save_peft_adapter(dir, adapter_config(cfg), adapter);  // staged: replaces an older adapter whole
    metrics->finish_line();
    log::info(dtune::str("done: ", step, " steps in ", static_cast<int64_t>(now_s() - t_start), " s; adapter in ", dir,
                         " (PeftModel.from_pretrained loads it); peak memory ", dist::peak_memory_gib(device), " GiB on rank 0"));
  }
  if (rank == 0 && cfg.generate.enabled) {
    model.set_training(false);
    const Tokenizer tokenizer = Tokenizer::load(cfg.model.tokenizer.empty() ? cfg.model.path : cfg.model.tokenizer);
    const FormattedPrompt prompt = format_prompt(cfg.generate.prompt_template, cfg.generate.prompt, cfg.model.path);
    GenerateOptions gen;
    gen.max_new_tokens = cfg.generate.max_new_tokens;
    gen.sampling.temperature = cfg.generate.temperature;
    gen.sampling.top_p = cfg.generate.top_p;
    gen.sampling.top_k = cfg.generate.top_k;
    gen.sampling.repetition_penalty = cfg.generate.repetition_penalty;
    gen.sampling.seed = cfg.generate.seed;
    gen.add_special_tokens = prompt.add_special_tokens;
    log::info("generation test (" + cfg.generate.prompt_template + " prompt):\n" + cfg.generate.prompt + "\n---");
    const std::string answer = generate_text(model, tokenizer, prompt.text, gen, [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    });
    std::printf("\n");
    std::ofstream(cfg.checkpoint.output_dir + "/generation.txt") << "prompt: " << cfg.generate.prompt << "\n\nanswer:\n"
                                                                  << answer << "\n";
  }
  comm->barrier();
  return kExitOk;
}

}  // namespace dtune
