// The training recipe; see trainer.h. Recipe::run reads top to bottom as the stages of a run
// (torchtune's recipe shape): setup_device_and_comm, claim_output_dir, setup_data, setup_model,
// setup_optimizer, maybe_resume, setup_metrics, then train_step / evaluate / save_checkpoint per step, finish.
// Every stage runs on every rank in the same order (their collectives match); the state that a
// checkpoint carries is TrainerState plus each rank's RankState.
#include "dtune/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <numeric>
#include <optional>

#include "dtune/config/config_parser.h"
#include "dtune/core/cpus.h"
#include "dtune/core/device_request.h"
#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/data/batcher.h"
#include "dtune/data/hdf5_dataset.h"
#include "dtune/data/sampler.h"
#include "dtune/dist/communicator.h"
#include "dtune/dist/device.h"
#include "dtune/dist/mpi_env.h"
#include "dtune/dist/placement.h"
#include "dtune/dist/slurm_step.h"
#include "dtune/generate/chat_format.h"
#include "dtune/generate/generator.h"
#include "dtune/io/dtype_names.h"
#include "dtune/kernels/kernel_policy.h"
#include "dtune/io/peft_adapter.h"
#include "dtune/io/safetensors.h"
#include "dtune/model/decoder.h"
#include "dtune/tokenizer/tokenizer.h"
#include "dtune/train/adamw.h"
#include "dtune/train/batch_tensors.h"
#include "dtune/train/checkpoint.h"
#include "dtune/train/evaluate.h"
#include "dtune/train/flops.h"
#include "dtune/train/gpu_peak.h"
#include "dtune/train/loss_scaler.h"
#include "dtune/train/lr_schedule.h"
#include "dtune/train/metrics_log.h"
#include "dtune/train/optimizer_step.h"
#include "dtune/train/param_bucket.h"
#include "dtune/train/preemption.h"
#include "dtune/train/resume_config.h"
#include "dtune/train/run_lock.h"
#include "dtune/train/test_hooks.h"
#include "dtune/train/sharded_weights.h"
#include "dtune/train/trainer_state.h"

namespace dtune {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

AdapterConfig adapter_config(const Config& c) {
  AdapterConfig a;
  static_cast<LoraOptions&>(a) = c.lora;
  a.base_model_name_or_path = c.model.path;
  return a;
}

// The data file's identity for TrainerState::data: what a resume must find at data.path again.
nlohmann::json data_fingerprint(const Hdf5Dataset& train) {
  const PretokenizedInfo& i = train.info();
  return {{"tokenizer_sha256", i.tokenizer_sha256}, {"source_sha256", i.source_sha256},
          {"template_text", i.template_text}, {"max_length", i.max_length}, {"seed", i.seed},
          {"eval_fraction", i.eval_fraction}, {"num_train_rows", train.num_rows()}, {"num_tokens", train.num_tokens()}};
}

// The epoch's length in micro-batches, the same on every rank: the most any rank has. Packing
// gives ranks different counts; a rank with fewer runs empty micro-batches for the rest of the
// epoch, so every row is trained once per epoch (batcher.h). REQUIRES: called on every rank.
int64_t epoch_micro_batches(const Batcher& batcher, dist::Communicator& comm, int64_t epoch) {
  const double mine = static_cast<double>(batcher.batches_in_epoch(epoch));
  return static_cast<int64_t>(comm.all_reduce_scalar(mine, dist::ReduceOp::kMax));
}

// Rows and non-padding tokens this rank trained in the current epoch (saved per rank in the
// checkpoint so a resumed epoch still reports its whole total).
struct EpochTally {
  int64_t rows = 0;
  int64_t tokens = 0;
};

// What the throughput metrics accumulate between two metrics lines.
struct Throughput {
  double t_last = 0;    // when the last line was logged (s)
  int64_t tokens = 0;   // non-padding tokens, all ranks
  double flops = 0;     // this rank's model FLOPs
};

class Recipe {
 public:
  explicit Recipe(const Config& cfg, dist::MpiEnv& env) : cfg_(cfg), env_(env) {}
  int run();

 private:
  void setup_device_and_comm();
  // model.tokenizer, else model.path: the tokenizer the data was made with, saved with adapters.
  std::string tokenizer_source() const { return cfg_.model.tokenizer.empty() ? cfg_.model.path : cfg_.model.tokenizer; }
  void setup_shard_group();
  void claim_output_dir();
  void setup_data();
  void setup_model();
  void setup_optimizer();
  void maybe_resume();
  void reshard_position(const LoadedCheckpoint& ck);
  void replan_resharded_epoch();
  double epoch_progress() const;
  void setup_metrics();
  void start_next_epoch();
  void train_step();
  void report_epoch(double fraction_done);
  void evaluate(int64_t at_step);
  void save_checkpoint(const char* why);
  void finish();
  void run_generation_test();
  void run_empty_micro_batch();
  bool lockstep() const { return model_->frozen_weights().collective(); }

  const Config& cfg_;
  dist::MpiEnv& env_;
  double t_start_ = now_s();
  c10::Device device_ = c10::Device(c10::kCPU);
  int threads_ = 1;
  std::unique_ptr<dist::Communicator> comm_;
  // train.sharding = full: comm_ itself; hybrid: this rank's group of one node; none: null.
  std::unique_ptr<dist::Communicator> group_comm_;
  dist::Communicator* shard_comm_ = nullptr;
  int rank_ = 0;
  int world_ = 1;
  std::optional<RunLock> run_lock_;  // rank 0: this run owns checkpoint.output_dir

  std::optional<Hdf5Dataset> train_data_;
  std::optional<Hdf5Dataset> eval_data_;
  std::optional<ShardSampler> sampler_;
  std::optional<Batcher> batcher_;
  std::vector<int64_t> epoch_micro_;  // micro-batches of epoch e on every rank; grown on every rank
  double epoch_done_before_ = 0;      // of the current epoch, read by earlier worlds (a reshard)
  int64_t accum_ = 1;

  std::optional<Decoder> model_;
  std::optional<ParamBucket> bucket_;
  // What every saved adapter_config.json says: the config's LoRA knobs, and an init adapter's
  // layers_to_transform / layers_pattern (its modules are the ones trained).
  AdapterConfig adapter_config_;
  std::optional<AdamW> optimizer_;
  std::optional<LrSchedule> schedule_;
  std::optional<LossScaler> scaler_;
  double peak_tflops_ = 0;
  int64_t matmul_params_ = 0;  // the N of MFU's 4N (flops.h)

  TrainerState state_;
  std::optional<std::string> resumed_from_;
  int64_t last_saved_ = -1;
  int64_t nonfinite_streak_ = 0;
  int64_t steps_this_run_ = 0;  // optimizer steps this process took (0: resumed a finished run)
  EpochTally tally_;
  Throughput throughput_;
  std::vector<Batch> micro_;
  std::unique_ptr<MetricsLog> metrics_;  // rank 0 only
};

int Recipe::run() {
  validate(cfg_);
  // First, so that a signal arriving during the (long) setup is honoured, not fatal.
  install_preemption_handlers();
  setup_device_and_comm();
  setup_shard_group();
  claim_output_dir();
  setup_data();
  setup_model();
  setup_optimizer();
  maybe_resume();
  setup_metrics();

  model_->set_training(true);
  throughput_.t_last = now_s();
  while (state_.step < state_.total_steps) {
    train_step();
    if (state_.micro_in_epoch == epoch_micro_[state_.epoch]) report_epoch(1.0);
    if (cfg_.train.eval_every > 0 && state_.step % cfg_.train.eval_every == 0 && state_.step < state_.total_steps) {
      evaluate(state_.step);
      model_->set_training(true);
      throughput_.t_last = now_s();  // tokens/s and MFU measure training steps, not the eval
    }
    if (cfg_.checkpoint.save_every > 0 && state_.step % cfg_.checkpoint.save_every == 0 &&
        state_.step < state_.total_steps) {
      save_checkpoint("save_every");
      throughput_.t_last = now_s();  // nor the checkpoint
    }
    if (comm_->any(preemption_requested())) {
      if (last_saved_ != state_.step) save_checkpoint("preempted");
      log::info(dtune::str("preempted at step ", state_.step, ": checkpoint written; exiting with code ",
                           kExitPreempted, " so the job script requeues"));
      return kExitPreempted;
    }
  }
  finish();
  return kExitOk;
}

// The device of this rank, CPU threads, deterministic mode, and the one communicator.
void Recipe::setup_device_and_comm() {
  dist::check_slurm_step(env_.world_size(), std::getenv("SLURM_STEP_NUM_TASKS"));
  // Where every rank runs, each rank's GPU chosen from the whole picture and checked (placement.h).
  std::unique_ptr<dist::Communicator> host =
      env_.world_size() > 1 ? env_.make_mpi_communicator() : dist::make_single_process_communicator();
  host->set_phase("placement");
  std::vector<dist::RankPlacement> placement =
      dist::gather_placements(*host, dist::local_placement(env_.rank(), env_.local_rank()));
  if (cfg_.train.device != "cpu") dist::choose_gpus(placement);
  if (env_.rank() == 0) log::info(dist::placement_table(placement));
  dist::check_placement(placement);
  device_ = dist::select_device(parse_device_request(cfg_.train.device, "train.device", /*allow_index=*/false),
                                 std::max(0, placement[static_cast<size_t>(env_.rank())].gpu), "train.device");
  // As transformers' Trainer refuses fp16 without a GPU: a GPU config that landed on a machine
  // without one must not train for days in fp16 on the CPU. An explicit train.device=cpu may.
  DTUNE_CHECK(!(device_.is_cpu() && cfg_.train.device == "auto" && cfg_.train.precision != "fp32"), "train.precision=",
              cfg_.train.precision, " with train.device=auto, but no GPU is visible to this rank: run where a GPU is ",
              "visible (check nvidia-smi and CUDA_VISIBLE_DEVICES), or train on the CPU with train.precision=fp32 (or ",
              "train.device=cpu to keep ", cfg_.train.precision, ")");
  threads_ = cfg_.train.threads > 0 ? static_cast<int>(cfg_.train.threads) : default_threads_per_rank(env_.local_size());
  if (device_.is_cpu()) at::set_num_threads(threads_);
  if (cfg_.train.deterministic) {
    // cuBLAS is deterministic only with a fixed workspace; it reads this before its first GEMM
    // (none has run yet). A value the user exported is kept.
    if (device_.is_cuda()) DTUNE_CHECK(setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0) == 0, "setenv failed");
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
  }
  comm_ = device_.is_cuda() ? env_.make_nccl_communicator(device_.index()) : std::move(host);
  rank_ = comm_->rank();
  world_ = comm_->world_size();
  log::info(dtune::str("dtune train: ", world_, " rank(s), ", comm_->backend(), " communicator, device ", device_,
                       device_.is_cpu() ? dtune::str(", ", threads_, " threads/rank") : std::string()));
}

// train.sharding: the group of ranks each frozen weight is split over (all ranks for full; the
// ranks of one node, or data_parallel_shard_degree of them, for hybrid), checked against the
// node layout so that hybrid's gathers never cross nodes. REQUIRES: called on every rank.
void Recipe::setup_shard_group() {
  const std::string& mode = cfg_.train.sharding;
  if (mode == "none") return;
  if (mode == "full") {
    shard_comm_ = comm_.get();
    return;
  }
  const int64_t group = cfg_.train.data_parallel_shard_degree > 0 ? cfg_.train.data_parallel_shard_degree
                                                                    : env_.local_size();
  // Every rank must agree on the group size (nodes with different rank counts would not).
  const double most = comm_->all_reduce_scalar(static_cast<double>(group), dist::ReduceOp::kMax);
  const double least = -comm_->all_reduce_scalar(-static_cast<double>(group), dist::ReduceOp::kMax);
  DTUNE_CHECK(most == least, "train.sharding=hybrid with train.data_parallel_shard_degree=0 takes a node's ranks as "
              "the shard group, but nodes run between ", least, " and ", most, " ranks: start the same number of ranks "
              "on every node (srun --ntasks-per-node, mpirun --map-by ppr:N:node), or set "
              "train.data_parallel_shard_degree to a size that divides every node's ranks");
  DTUNE_CHECK(world_ % group == 0, "train.sharding=hybrid: a shard group of ", group,
              " ranks (train.data_parallel_shard_degree) does not divide the job's ", world_,
              " ranks; choose a divisor of the ranks per node (0 = one node)");
  group_comm_ = device_.is_cuda()
                    ? env_.make_group_nccl_communicator(static_cast<int>(group), device_.index())
                    : env_.make_group_mpi_communicator(static_cast<int>(group));
  shard_comm_ = group_comm_.get();
  // A group stays on one node: its ranks share the node's first rank.
  const double node = env_.node_first_rank();
  const bool spans = group_comm_->all_reduce_scalar(node, dist::ReduceOp::kMax) !=
                     -group_comm_->all_reduce_scalar(-node, dist::ReduceOp::kMax);
  DTUNE_CHECK(!comm_->any(spans), "train.sharding=hybrid: a shard group of ", group,
              " consecutive ranks spans two nodes (this node runs ", env_.local_size(), " ranks): set "
              "train.data_parallel_shard_degree to a divisor of the ranks per node (0 = all of a node's ranks), and "
              "place ranks in blocks (srun --distribution=block, mpirun --map-by slot)");
}

// Rank 0 takes checkpoint.output_dir's run lock (one run per folder) and refuses a fresh run into
// a folder that holds an earlier run's checkpoints (resume it, or use another folder). Every
// rank learns the verdict, so all stop together. REQUIRES: called on every rank.
void Recipe::claim_output_dir() {
  std::string why;
  if (rank_ == 0) {
    try {
      run_lock_.emplace(RunLock::acquire(cfg_.checkpoint.output_dir));
      if (cfg_.checkpoint.resume.empty()) {
        const std::optional<std::string> earlier = find_checkpoint(cfg_.checkpoint.output_dir, "latest");
        DTUNE_CHECK(!earlier, "checkpoint.output_dir ", cfg_.checkpoint.output_dir, " already holds ", *earlier,
                    " from an earlier run, and checkpoint.resume is empty (a fresh run would overwrite it): continue "
                    "that run with --checkpoint.resume=latest, or start this one in another checkpoint.output_dir");
      }
    } catch (const Error& e) {
      why = e.what();
    }
  }
  if (comm_->any(!why.empty())) {
    if (rank_ == 0) throw Error(why);
    throw Error("rank 0 could not claim checkpoint.output_dir " + cfg_.checkpoint.output_dir + " (its message says why)");
  }
}

// This rank's shard of the pre-tokenized file, its batcher, and every epoch's length.
void Recipe::setup_data() {
  train_data_.emplace(Hdf5Dataset::open(cfg_.data.path, "train"));
  SamplerOptions sampler_opts;
  sampler_opts.seed = cfg_.data.seed;
  sampler_opts.shuffle = cfg_.data.shuffle;
  sampler_.emplace(train_data_->num_rows(), rank_, world_, sampler_opts);
  BatcherOptions batch_opts;
  batch_opts.batch_size = cfg_.data.micro_batch_size;
  batch_opts.pack = cfg_.data.packing;
  batch_opts.pack_length = cfg_.data.pack_length;
  batch_opts.group_window = cfg_.data.group_by_length ? 16 : 0;
  const PretokenizedInfo& info = train_data_->info();
  batch_opts.pad_id = static_cast<int32_t>(info.pad_id >= 0 ? info.pad_id : std::max<int64_t>(info.eos_id, 0));
  batcher_.emplace(*train_data_, *sampler_, batch_opts);
  if (cfg_.data.packing && rank_ == 0) {  // rows longer than a packed sequence are cut: say how much
    int64_t cut_rows = 0, cut_tokens = 0;
    for (int64_t r = 0; r < train_data_->num_rows(); ++r) {
      const int64_t over = train_data_->row_length(r) - cfg_.data.pack_length;
      if (over > 0) ++cut_rows, cut_tokens += over;
    }
    if (cut_rows > 0)
      log::warn(dtune::str(cut_rows, " of ", train_data_->num_rows(), " train rows are longer than data.pack_length = ",
                           cfg_.data.pack_length, ": their last ", cut_tokens, " tokens in all (",
                           100.0 * static_cast<double>(cut_tokens) / static_cast<double>(train_data_->num_tokens()),
                           "% of the split) are never trained; raise data.pack_length to keep them"));
  }
  accum_ = cfg_.train.gradient_accumulation_steps;
  micro_.resize(static_cast<size_t>(accum_));
  for (int64_t e = 0; e < cfg_.train.epochs; ++e) epoch_micro_.push_back(epoch_micro_batches(*batcher_, *comm_, e));
  if (Hdf5Dataset::read_info(cfg_.data.path).num_eval_rows > 0) eval_data_.emplace(Hdf5Dataset::open(cfg_.data.path, "eval"));
}

// The base model on this rank's device, the LoRA adapter (the same on every rank), the bucket.
void Recipe::setup_model() {
  DecoderOptions model_opts;
  model_opts.dtype = dtype_from_name(cfg_.train.precision, "train.precision");
  model_opts.device = device_;
  model_opts.activation_checkpointing = cfg_.train.gradient_checkpointing;
  model_opts.checkpoint_every = cfg_.train.activation_checkpoint_every;
  model_opts.kernels = kernel_policy_from_name(cfg_.model.attention, "model.attention");
  // Flash attention (varlen for packed rows) needs Ampere or newer.
  model_opts.flash_capable = device_.is_cpu() || dist::compute_capability(device_) >= 80;
  if (shard_comm_ == nullptr) {
    model_.emplace(Decoder::load(cfg_.model.path, model_opts));
  } else {
    const WeightStore store = WeightStore::open(cfg_.model.path);
    ShardedWeights* sharded = nullptr;
    const FrozenWeightsFactory make_sharded = [&](const std::vector<FrozenUnit>& units, c10::ScalarType dtype,
                                                  c10::Device device) -> std::unique_ptr<FrozenWeights> {
      auto w = std::make_unique<ShardedWeights>(units, store, cfg_.model.path, *shard_comm_, dtype, device);
      sharded = w.get();
      return w;
    };
    model_.emplace(load_model_config(cfg_.model.path), make_sharded, model_opts);
    rusage usage{};
    DTUNE_CHECK(getrusage(RUSAGE_SELF, &usage) == 0, "getrusage failed");
    log::info(dtune::str("train.sharding=", cfg_.train.sharding, ": the frozen base is split over ", shard_comm_->world_size(),
                         " ranks; this rank holds ", sharded->shard_bytes() / 1048576.0, " MiB of its ",
                         sharded->model_bytes() / 1048576.0, " MiB; peak host memory while loading ",
                         static_cast<double>(usage.ru_maxrss) / 1024.0, " MiB"));
  }
  const PretokenizedInfo& info = train_data_->info();
  DTUNE_CHECK(info.vocab_size <= model_->config().vocab_size, "data.path ", cfg_.data.path, " was tokenized with a ",
              info.vocab_size, "-token vocabulary but model.path ", cfg_.model.path, " has ",
              model_->config().vocab_size, ": pretokenize with this model's tokenizer");
  // Every rank has its model before the first GPU collective starts its watchdog clock: a rank
  // whose load is slower by more than train.collective_timeout is named by this host barrier.
  comm_->set_phase("setup: every rank loaded the model");
  comm_->barrier();
  comm_->set_phase("setup");
  adapter_config_ = adapter_config(cfg_);
  if (cfg_.lora.init_adapter.empty()) {
    model_->add_lora(cfg_.lora, cfg_.train.seed);
  } else {  // the one adapter loader; the saved modules with their values (the config must agree)
    const PeftAdapter init = load_peft_adapter(cfg_.lora.init_adapter, device_);
    check_adapter_matches(cfg_.lora, OptionNames::config_section("lora"), init, cfg_.lora.init_adapter);
    attach_lora_weights(model_->named_linears(), init.modules, cfg_.lora.dropout);
    adapter_config_.layers_to_transform = init.config.layers_to_transform;
    adapter_config_.layers_pattern = init.config.layers_pattern;
  }
  matmul_params_ = matmul_parameters(model_->config(), model_->num_parameters());
  bucket_.emplace(model_->lora_parameters());
  comm_->broadcast(bucket_->params(), 0);  // every rank starts from rank 0's adapter, bit for bit
  // NCCL connects and allocates its buffers on a collective's first use: run the gradient
  // all-reduce once now (on zeros), before activations fill the GPU, not first after a backward.
  comm_->all_reduce(bucket_->grads(), dist::ReduceOp::kSum);
  log::info(dtune::str("model ", cfg_.model.path, " (", model_->config().model_type, ", ",
                       model_->num_parameters() / 1e6, "M params, ", cfg_.train.precision, "); LoRA r=", cfg_.lora.r,
                       ": ", model_->num_lora_parameters(), " trainable params"));
}

// AdamW over the bucket, the LR schedule over the planned steps, the fp16 loss scaler.
void Recipe::setup_optimizer() {
  AdamWOptions adam;
  adam.beta1 = cfg_.train.adam_beta1;
  adam.beta2 = cfg_.train.adam_beta2;
  adam.eps = cfg_.train.adam_epsilon;
  adam.weight_decay = cfg_.train.weight_decay;
  optimizer_.emplace(bucket_->params(), bucket_->grads(), adam);
  // An epoch's last optimizer step may take fewer micro-batches (the loss is normalised by tokens).
  state_.total_steps = 0;
  for (const int64_t m : epoch_micro_) state_.total_steps += (m + accum_ - 1) / accum_;
  if (cfg_.train.max_steps > 0) state_.total_steps = cfg_.train.max_steps;  // more epochs if needed
  schedule_.emplace(cfg_.train.lr_scheduler, cfg_.train.learning_rate, state_.total_steps, cfg_.train.warmup_steps,
                    cfg_.train.warmup_ratio);
  scaler_.emplace(cfg_.train.precision == "fp16", cfg_.train.loss_scale_init, cfg_.train.loss_scale_growth_interval);
  peak_tflops_ = resolve_peak_tflops(cfg_.train.peak_tflops, device_.is_cuda() ? dist::device_name(device_) : "");
}

// Restores adapter, optimizer, scaler, position and RNG from checkpoint.resume, if one exists;
// otherwise seeds this rank's dropout stream. Rank 0 chooses the checkpoint and every rank
// resumes that one. A checkpoint of another number of ranks reshards the epoch's position
// (reshard_position). REQUIRES: called on every rank.
void Recipe::maybe_resume() {
  if (!cfg_.checkpoint.resume.empty()) {
    std::string chosen, why;
    if (rank_ == 0) {
      try {
        chosen = find_checkpoint(cfg_.checkpoint.output_dir, cfg_.checkpoint.resume).value_or("");
      } catch (const Error& e) {
        why = e.what();
      }
    }
    if (comm_->any(!why.empty())) {
      if (rank_ == 0) throw Error(why);
      throw Error("rank 0 could not find checkpoint.resume = " + cfg_.checkpoint.resume + " (its message says why)");
    }
    comm_->broadcast_string(chosen, 0);
    if (!chosen.empty()) resumed_from_ = chosen;
  }
  if (!resumed_from_) {
    at::manual_seed(cfg_.train.seed + static_cast<uint64_t>(rank_));  // dropout streams differ by rank
    if (cfg_.checkpoint.resume == "latest") log::info("no checkpoint in " + cfg_.checkpoint.output_dir + ": starting fresh");
    return;
  }
  const LoadedCheckpoint ck = load_checkpoint(*resumed_from_, rank_, world_, device_);
  const auto saved_world = static_cast<int>(ck.rank_states.size());
  const std::string stored_ini = *resumed_from_ + "/config.ini";
  if (std::ifstream in{stored_ini}) {
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    for (const ConfigChange& c : check_resume_config(text, format_config(cfg_), *resumed_from_, saved_world, world_))
      log::info(dtune::str("resuming with ", c.key, " = ", c.current, " (the checkpoint had ", c.stored, ")"));
  } else {
    log::warn("checkpoint " + *resumed_from_ + " has no config.ini: the config is not compared with it");
  }
  model_->load_lora(ck.adapter);
  const AdamWMoments moments = adamw_moments(ck);
  const int64_t total_steps = state_.total_steps;
  try {
    state_ = ck.trainer.get<TrainerState>();
  } catch (const Error& e) {
    throw Error(dtune::str("checkpoint ", *resumed_from_, "/trainer_state.json: ", e.what()));
  }
  state_.total_steps = total_steps;  // the schedule of this run's config
  const nlohmann::json data_now = data_fingerprint(*train_data_);
  if (!state_.data.is_null() && state_.data != data_now) {
    std::string differs;
    for (const auto& [key, value] : data_now.items())
      if (state_.data.value(key, nlohmann::json()) != value)
        differs += dtune::str("\n  ", key, ": ", state_.data.value(key, nlohmann::json()).dump(), " in the checkpoint, ",
                              value.dump(), " now");
    throw Error(dtune::str("cannot resume ", *resumed_from_, ": data.path ", cfg_.data.path,
                           " is not the file the run was trained on (it was pretokenized again?)", differs,
                           "\n  resume with the original file, or start a new run in another checkpoint.output_dir"));
  }
  optimizer_->load_state(moments.exp_avg, moments.exp_avg_sq, state_.optimizer_steps);
  scaler_->load_state(state_.loss_scaler);
  if (saved_world == world_) {
    const SamplerState reader = ck.rank_state.at("reader").get<SamplerState>();
    batcher_->restore(reader);
    restore_rng_state(device_, ck.rank_state.at("rng"), *resumed_from_,
                      cfg_.train.seed + static_cast<uint64_t>(rank_ + state_.step * world_));
    tally_.rows = ck.rank_state.value("epoch_rows", int64_t{0});  // absent before dtune 0.7: count from here
    tally_.tokens = ck.rank_state.value("epoch_tokens", int64_t{0});
  } else {
    reshard_position(ck);
  }
  // A run resumed past cfg.train.epochs (train.max_steps) plans the epochs it reached.
  while (static_cast<int64_t>(epoch_micro_.size()) <= state_.epoch)
    epoch_micro_.push_back(epoch_micro_batches(*batcher_, *comm_, static_cast<int64_t>(epoch_micro_.size())));
  if (!batcher_->state().reshards.empty()) replan_resharded_epoch();
  last_saved_ = state_.step;
  log::info(dtune::str("resumed from ", *resumed_from_, " at step ", state_.step, "/", state_.total_steps));
}

// A checkpoint written by another number of ranks: the epoch goes on with the rows its ranks had
// not reached, dealt out over this world (SamplerState::reshards, sampler.h); each rank's dropout
// stream is re-derived from the seed, its rank and the step (sample-exact, not bit-exact); the
// epoch's row and token tallies so far move to rank 0. REQUIRES: called on every rank.
void Recipe::reshard_position(const LoadedCheckpoint& ck) {
  Reshard reached;
  reached.world_size = static_cast<int64_t>(ck.rank_states.size());
  std::vector<Reshard> earlier;
  EpochTally carried;
  for (size_t r = 0; r < ck.rank_states.size(); ++r) {
    SamplerState old;
    try {
      old = ck.rank_states[r].at("reader").get<SamplerState>();
      carried.rows += ck.rank_states[r].value("epoch_rows", int64_t{0});
      carried.tokens += ck.rank_states[r].value("epoch_tokens", int64_t{0});
    } catch (const std::exception& e) {
      throw Error(dtune::str("checkpoint ", *resumed_from_, "/rank_states.json, rank ", r, ": ", e.what()));
    }
    DTUNE_CHECK(old.epoch == state_.epoch && (r == 0 || old.reshards.size() == earlier.size()), "checkpoint ",
                *resumed_from_, "/rank_states.json: rank ", r, "'s reader is in epoch ", old.epoch,
                " but the run is in epoch ", state_.epoch, "; the checkpoint is damaged, resume from another one");
    if (r == 0) earlier = old.reshards;
    reached.positions.push_back(old.position);
  }
  SamplerState now = sampler_->start_state(state_.epoch);
  now.reshards = earlier;
  now.reshards.push_back(reached);
  batcher_->restore(now);
  state_.micro_in_epoch = 0;
  if (rank_ == 0) tally_ = carried;
  const uint64_t seed = cfg_.train.seed + static_cast<uint64_t>(rank_ + state_.step * world_);
  {
    at::Generator gen = at::globalContext().defaultGenerator(device_);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  log::info(dtune::str("checkpoint ", *resumed_from_, " was written by ", reached.world_size, " ranks and this run has ",
                       world_, ": epoch ", state_.epoch + 1, " goes on with the rows those ranks had not reached, dealt "
                       "out over ", world_, " (each row still once per epoch); dropout restarts from seed + rank + step, "
                       "so the run is sample-exact, not bit-exact, with an uninterrupted one"));
}

// The current epoch after a reshard: its micro-batches are those of the rows left, and (without
// train.max_steps) the run's planned steps and the LR schedule follow, as transformers' Trainer
// recomputes max_steps from the new data loader when it resumes on another world size.
// REQUIRES: called on every rank.
void Recipe::replan_resharded_epoch() {
  const int64_t e = state_.epoch;
  epoch_micro_[static_cast<size_t>(e)] = epoch_micro_batches(*batcher_, *comm_, e);
  const double left = comm_->all_reduce_scalar(static_cast<double>(batcher_->rows_in_epoch()), dist::ReduceOp::kSum);
  epoch_done_before_ = std::clamp(1.0 - left / static_cast<double>(train_data_->num_rows()), 0.0, 1.0);
  if (cfg_.train.max_steps > 0) return;
  int64_t total = state_.step + (epoch_micro_[e] - state_.micro_in_epoch + accum_ - 1) / accum_;
  for (size_t f = static_cast<size_t>(e) + 1; f < epoch_micro_.size(); ++f) total += (epoch_micro_[f] + accum_ - 1) / accum_;
  if (total != state_.total_steps)
    log::info(dtune::str("the run now plans ", total, " steps (", state_.total_steps, " on the earlier number of ranks); ",
                         "the LR schedule follows the new plan from step ", state_.step));
  state_.total_steps = total;
  schedule_.emplace(cfg_.train.lr_scheduler, cfg_.train.learning_rate, state_.total_steps, cfg_.train.warmup_steps,
                    cfg_.train.warmup_ratio);
}

// How far the current epoch is, 0..1: its micro-batches done, after what earlier worlds had read.
double Recipe::epoch_progress() const {
  const double micro = static_cast<double>(state_.micro_in_epoch) / static_cast<double>(epoch_micro_[state_.epoch]);
  if (epoch_done_before_ == 0) return micro;
  return epoch_done_before_ + (1.0 - epoch_done_before_) * micro;
}

// Rank 0: metrics.jsonl, TensorBoard, the progress display, the resolved config.ini.
void Recipe::setup_metrics() {
  if (rank_ != 0) return;
  MetricsOptions mo;
  mo.output_dir = cfg_.checkpoint.output_dir;
  mo.tensorboard = cfg_.log.tensorboard;
  mo.progress = cfg_.log.progress;
  mo.log_every = cfg_.log.log_every;
  mo.total_steps = state_.total_steps;
  mo.resume_step = resumed_from_.has_value() ? state_.step : -1;
  metrics_ = std::make_unique<MetricsLog>(mo);
  std::ofstream(cfg_.checkpoint.output_dir + "/config.ini") << format_config(cfg_);
  log::info(dtune::str(train_data_->num_rows(), " train rows, ", world_, " x ", cfg_.data.micro_batch_size, " rows x ",
                       accum_, " micro-steps per optimizer step; ", state_.total_steps, " steps; warmup ",
                       schedule_->warmup_steps(), "; output ", cfg_.checkpoint.output_dir));
}

// Every rank moves to the next epoch together. REQUIRES: called on every rank.
void Recipe::start_next_epoch() {
  ++state_.epoch;
  state_.micro_in_epoch = 0;
  epoch_done_before_ = 0;
  batcher_->restore(sampler_->start_state(state_.epoch));
  if (static_cast<int64_t>(epoch_micro_.size()) == state_.epoch)
    epoch_micro_.push_back(epoch_micro_batches(*batcher_, *comm_, state_.epoch));
}

// One optimizer step: the step's micro-batches, forward/backward with the loss normalised by
// the global loss tokens, one all-reduce, the non-finite check, clipping, AdamW, the metrics.
// REQUIRES: called on every rank.
void Recipe::train_step() {
  comm_->set_phase(dtune::str("step ", state_.step + 1));
  test_hook_stall_at_step(rank_, state_.step + 1);
  if (state_.micro_in_epoch >= epoch_micro_[state_.epoch]) start_next_epoch();
  const double t_step = now_s();
  // 1. This step's micro-batches and the global count of loss tokens (the normaliser). A rank
  //    whose rows of the epoch are used up runs empty micro-batches (no rows, no tokens).
  const int64_t n_micro = std::min(accum_, epoch_micro_[state_.epoch] - state_.micro_in_epoch);
  int64_t local_tokens = 0, local_real = 0;
  for (int64_t i = 0; i < n_micro; ++i) {
    if (batcher_->rows_left()) {
      DTUNE_CHECK(batcher_->next(micro_[i]), "internal: rank ", rank_, " ran out of batches in epoch ", state_.epoch);
    } else {
      micro_[i] = make_empty_batch();
    }
    const int64_t real = std::accumulate(micro_[i].lengths.begin(), micro_[i].lengths.end(), int64_t{0});
    local_tokens += micro_[i].num_loss_tokens;
    local_real += real;
    tally_.rows += static_cast<int64_t>(micro_[i].rows.size());
    tally_.tokens += real;
    throughput_.flops += training_flops(micro_[i], model_->config(), matmul_params_);
  }
  const double global_tokens = comm_->all_reduce_scalar(static_cast<double>(local_tokens), dist::ReduceOp::kSum);
  // Every rank's non-padding tokens, for an exact job-wide tokens/s (ranks' padded batches differ).
  const double global_real = comm_->all_reduce_scalar(static_cast<double>(local_real), dist::ReduceOp::kSum);
  DTUNE_CHECK(global_tokens > 0, "step ", state_.step + 1, " has no loss tokens on any rank (all completions "
              "truncated?); ", cfg_.data.packing ? "raise data.pack_length (rows longer are cut to it) or "
                                                 : "", "raise --max-length in pretokenize");

  // 2. Forward/backward per micro-batch; the scaled loss sum / global tokens accumulates grads.
  bucket_->zero_grads();
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device_));
  const double loss_weight = scaler_->scale() / global_tokens;
  {
    // No host synchronisation from here to the all-reduce (DTUNE_CUDA_SYNC_CHECK=1 proves it).
    const dist::HostSyncCheck no_host_sync(device_);
    for (int64_t i = 0; i < n_micro; ++i) {
      if (micro_[i].batch_size == 0) {  // empty: zero gradients, zero tokens
        if (lockstep()) run_empty_micro_batch();
        continue;
      }
      const BatchTensors b = to_tensors(micro_[i], cfg_.data.packing, device_);
      const at::Tensor hidden = model_->forward_hidden(b.input_ids, b.position_ids, b.mask);
      const LossSum ls = model_->loss(hidden, b.loss_targets);
      if (ls.num_tokens > 0) {
        (ls.sum * loss_weight).backward();
      } else if (lockstep()) {  // no loss to flow from, but the backward's gathers must run
        hidden.backward(at::zeros_like(hidden));
      }
      loss_sum += ls.sum.detach();
    }
  }
  state_.micro_in_epoch += n_micro;

  // 3. One all-reduce of the flat gradient bucket; a NaN/inf on any rank reaches every rank.
  bucket_->copy_grads_into_bucket();
  const double t_reduce = now_s();
  comm_->all_reduce(bucket_->grads(), dist::ReduceOp::kSum);
  // MPI: the whole collective, including waiting for the slowest rank (it blocks).
  double reduce_s = now_s() - t_reduce;
  if (scaler_->enabled()) bucket_->grads().div_(scaler_->scale());
  const double grad_norm = bucket_->grads().norm().item<double>();
  // NCCL: the launch returned at once; the all-reduce's own time is between CUDA events around
  // it, complete now that item() has waited for the norm of its result.
  if (const std::optional<double> device_s = comm_->device_all_reduce_seconds()) reduce_s = *device_s;

  // 4. Skip (fp16 overflow; the schedule does not advance) or clip and update.
  const OptimizerUpdate update =
      apply_optimizer_update(*optimizer_, *scaler_, *schedule_, bucket_->grads(), grad_norm, cfg_.train.max_grad_norm);
  const double lr = update.lr;
  if (update.applied) {
    nonfinite_streak_ = 0;
  } else {
    DTUNE_CHECK(++nonfinite_streak_ < cfg_.train.max_nonfinite_steps, "the gradients were non-finite for ",
                nonfinite_streak_, " steps in a row (last loss scale ", scaler_->scale(),
                "): lower train.learning_rate, use train.precision=bf16, or check the data");
    log::warn(dtune::str("step ", state_.step + 1, ": non-finite gradients, step skipped on every rank; loss scale now ",
                         scaler_->scale()));
  }
  ++state_.step;
  ++steps_this_run_;

  // 5. The metrics line (rank 0 logs; the loss all-reduce runs on every rank).
  const double loss = comm_->all_reduce_scalar(loss_sum.item<double>(), dist::ReduceOp::kSum) / global_tokens;
  throughput_.tokens += static_cast<int64_t>(global_real);
  if (metrics_) {
    const double dt = std::max(now_s() - throughput_.t_last, 1e-9);
    const double tflops = throughput_.flops / dt / 1e12;  // achieved on this rank's device
    Metrics m = {{"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm}, {"loss_scale", scaler_->scale()},
                 {"tokens_per_s", static_cast<double>(throughput_.tokens) / dt},
                 {"epoch", static_cast<double>(state_.epoch) + epoch_progress()},
                 {"peak_mem_gib", dist::peak_memory_gib(device_)}, {"step_s", now_s() - t_step}, {"allreduce_s", reduce_s},
                 {"tflops", tflops}};
    if (peak_tflops_ > 0) m.emplace_back("mfu", tflops / peak_tflops_);
    metrics_->log_step(state_.step, m);
  }
  throughput_ = Throughput{now_s(), 0, 0};
}

// With sharded weights a rank without rows still takes part in each gather of the micro-batch:
// one token through forward and loss, a zero gradient through backward (adding nothing), under
// the dropout RNG state it had before, so its later masks are as if it had skipped the pass.
void Recipe::run_empty_micro_batch() {
  at::Generator gen = at::globalContext().defaultGenerator(device_);
  at::Tensor rng;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    rng = gen.get_state();
  }
  const at::Tensor ids = at::zeros({1, 1}, at::TensorOptions().dtype(at::kLong).device(device_));
  const at::Tensor hidden = model_->forward_hidden(ids, ids, AttentionMask::causal());
  LossTargets none;
  none.positions = at::zeros({0}, ids.options());
  none.targets = at::zeros({0}, ids.options());
  model_->loss(hidden, none);
  hidden.backward(at::zeros_like(hidden));
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(rng);
}

// Logs the epoch's rows and tokens over all ranks (rank 0 writes) and clears the tally.
// REQUIRES: called on every rank (two all-reduces).
void Recipe::report_epoch(double fraction_done) {
  const double rows = comm_->all_reduce_scalar(static_cast<double>(tally_.rows), dist::ReduceOp::kSum);
  const double tokens = comm_->all_reduce_scalar(static_cast<double>(tally_.tokens), dist::ReduceOp::kSum);
  tally_ = EpochTally{};
  if (!metrics_) return;
  Metrics m = {{"epoch", static_cast<double>(state_.epoch + 1)}, {"rows", rows}, {"tokens", tokens},
               {"train_rows", static_cast<double>(train_data_->num_rows())}};
  if (fraction_done < 1.0) m.emplace_back("fraction_done", fraction_done);
  metrics_->log_epoch(state_.step, m);
}

// Eval loss over the eval split (every rank takes part). REQUIRES: called on every rank.
void Recipe::evaluate(int64_t at_step) {
  if (!eval_data_) return;
  comm_->set_phase(dtune::str("eval after step ", at_step));
  const double t_eval = now_s();
  const EvalResult r = dtune::evaluate(*model_, *eval_data_, *comm_, device_, cfg_.data.micro_batch_size);
  if (metrics_)
    metrics_->log_eval(at_step, {{"loss", r.loss}, {"perplexity", std::exp(r.loss)}, {"tokens", double(r.tokens)},
                                 {"eval_s", now_s() - t_eval}});
}

// checkpoint-STEP: the adapter, optimizer and trainer state, every rank's reader and RNG.
// REQUIRES: called on every rank.
void Recipe::save_checkpoint(const char* why) {
  comm_->set_phase(dtune::str("checkpoint at step ", state_.step, " (", why, ")"));
  CheckpointData data;
  data.step = state_.step;
  state_.optimizer_steps = optimizer_->steps_taken();
  state_.loss_scaler = scaler_->state();
  state_.world_size = world_;
  state_.dtune_version = DTUNE_VERSION;
  state_.data = data_fingerprint(*train_data_);
  data.trainer = state_;
  data.adapter_config = adapter_config_;
  data.tokenizer_source = tokenizer_source();
  for (const auto& [name, t] : bucket_->named()) data.adapter.emplace_back(name, t.detach());
  data.optimizer = {{"exp_avg", optimizer_->exp_avg()}, {"exp_avg_sq", optimizer_->exp_avg_sq()}};
  data.config_ini = format_config(cfg_);
  const RankState mine = {{"reader", batcher_->state()}, {"rng", save_rng_state(device_)},
                          {"epoch_rows", tally_.rows}, {"epoch_tokens", tally_.tokens}};
  const std::string path = dtune::save_checkpoint(*comm_, cfg_.checkpoint.output_dir, data, mine, cfg_.checkpoint.keep_last);
  if (metrics_) metrics_->finish_line();
  log::info(dtune::str("checkpoint ", path, " (", why, ")"));
  last_saved_ = state_.step;
}

// The end: a cut epoch's report, the final checkpoint and eval, the adapter, the generation
// test. REQUIRES: called on every rank.
void Recipe::finish() {
  // A resume of a run that had already finished trains nothing: its epoch report and final eval
  // are in metrics.jsonl already, so they are not logged twice.
  comm_->set_phase("finish");
  const bool trained = steps_this_run_ > 0;
  if (!trained) log::info(dtune::str("the run had already finished (step ", state_.step, " of ", state_.total_steps, ")"));
  if (trained && state_.micro_in_epoch > 0 && state_.micro_in_epoch < epoch_micro_[state_.epoch])  // max_steps ended mid-epoch
    report_epoch(epoch_progress());
  if (last_saved_ != state_.step) save_checkpoint("end of training");
  if (trained) evaluate(state_.step);
  if (rank_ == 0) {
    std::vector<std::pair<std::string, at::Tensor>> adapter;
    for (const auto& [name, t] : bucket_->named()) adapter.emplace_back(name, t.detach());
    const std::string dir = cfg_.checkpoint.output_dir + "/adapter";
    save_peft_adapter(dir, adapter_config_, adapter, tokenizer_source());  // staged: replaces an older adapter whole
    metrics_->finish_line();
    log::info(dtune::str("done: ", state_.step, " steps in ", static_cast<int64_t>(now_s() - t_start_), " s; adapter in ",
                         dir, " (PeftModel.from_pretrained loads it); peak memory ", dist::peak_memory_gib(device_),
                         " GiB on rank 0"));
  }
  comm_->set_phase("finish");
  // The last collective of training: every rank is done. Rank 0's generation test follows alone
  // (the others end meanwhile), so its length does not count against train.collective_timeout;
  // with sharded weights every rank takes part in each of its forwards (rank 0 chooses the
  // tokens), each gather bounded as any collective.
  comm_->barrier();
  if (cfg_.generate.enabled && (rank_ == 0 || lockstep())) {
    comm_->set_phase("generation test");
    run_generation_test();
  }
}

// Rank 0 answers the configured prompt with the trained adapter, streaming the text, and saves
// it in output_dir/generation.txt. With sharded weights every rank runs the same forwards and
// takes rank 0's token at each step.
void Recipe::run_generation_test() {
  model_->set_training(false);
  const Tokenizer tokenizer = Tokenizer::load(tokenizer_source());
  const FormattedPrompt prompt = format_prompt(cfg_.generate.prompt_template, cfg_.generate.prompt, cfg_.model.path);
  GenerateOptions gen = cfg_.generate;  // the [generate] knobs are GenerateOptions
  // Unset knobs resolve as in transformers (generation_config.json, then its defaults); logged
  // here, resolved again inside generate_text from the same model config.
  std::string knobs = "generation knobs:";
  for (const std::string& line :
       resolve_generate_options(gen, model_->config().generation, OptionNames::config_section("generate")).lines)
    knobs += "\n  " + line;
  log::info(knobs);
  gen.add_special_tokens = prompt.add_special_tokens;
  if (lockstep()) {
    gen.agree_tokens = [this](at::Tensor& ids) {
      if (!device_.is_cuda()) return comm_->broadcast(ids, 0);
      at::Tensor on_device = ids.to(device_);  // NCCL moves device memory
      comm_->broadcast(on_device, 0);
      ids.copy_(on_device.cpu());
    };
  }
  log::info("generation test (" + cfg_.generate.prompt_template + " prompt):\n" + cfg_.generate.prompt + "\n---");
  const bool speaks = rank_ == 0;
  const std::string answer = generate_text(*model_, tokenizer, prompt.text, gen, [speaks](std::string_view piece) {
    if (!speaks) return;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  if (!speaks) return;
  std::printf("\n");
  std::ofstream(cfg_.checkpoint.output_dir + "/generation.txt") << "prompt: " << cfg_.generate.prompt << "\n\nanswer:\n"
                                                                << answer << "\n";
}

}  // namespace

int run_training(const Config& cfg, dist::MpiEnv& env) {
  Recipe recipe(cfg, env);
  return recipe.run();
}

}  // namespace dtune
