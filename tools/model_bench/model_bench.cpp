// Times LoRA fine-tuning steps (forward + chunked loss + backward) of the dtune decoder and
// prints one JSON line; bench/model_cpu_bench.py runs it beside transformers + peft.
//
// Usage: dtune_model_bench MODEL_DIR [--seq 512] [--batch 1] [--steps 5] [--warmup 1]
//        [--threads 2] [--rank 8] [--prompt-frac 0.5] [--checkpointing 0|1] [--checkpoint-every 1] [--chunk 1024] [--bf16 0|1]
//        [--dtune-kernels 0|1]
// With DTUNE_BENCH_TRACE=FILE set, the timed steps are recorded by libtorch's profiler into a
// Chrome trace; bench/trace_self_time.py sums it per operator.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <memory>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "dtune/core/error.h"
#include "dtune/model/decoder.h"

namespace {

// Peak resident set size of this process in MiB (VmHWM).
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1.0;
}

int run(int argc, char** argv) {
  DTUNE_CHECK(argc >= 2, "usage: dtune_model_bench MODEL_DIR [--seq N] [--batch N] [--steps N] ...");
  std::map<std::string, double> opt = {{"--seq", 512},  {"--batch", 1},         {"--steps", 5},
                                       {"--warmup", 1}, {"--threads", 2},       {"--rank", 8},
                                       {"--prompt-frac", 0.5}, {"--checkpointing", 0},
                                       {"--chunk", 1024}, {"--bf16", 0}, {"--checkpoint-every", 1},
                                       {"--dtune-kernels", 1}};
  for (int i = 2; i + 1 < argc; i += 2) {
    DTUNE_CHECK(opt.count(argv[i]), "unknown option ", argv[i]);
    opt[argv[i]] = std::stod(argv[i + 1]);
  }
  at::set_num_threads(static_cast<int>(opt["--threads"]));
  const int64_t B = static_cast<int64_t>(opt["--batch"]), T = static_cast<int64_t>(opt["--seq"]);

  dtune::DecoderOptions options;
  options.activation_checkpointing = opt["--checkpointing"] != 0;
  options.checkpoint_every = static_cast<int64_t>(opt["--checkpoint-every"]);
  options.loss_chunk_size = static_cast<int64_t>(opt["--chunk"]);
  if (opt["--bf16"] != 0) options.dtype = at::kBFloat16;
  // 0: libtorch's reference for every kernel (model.attention = reference), 1: dtune's kernels.
  options.kernels = opt["--dtune-kernels"] != 0 ? dtune::KernelPolicy::kDtune : dtune::KernelPolicy::kReference;
  dtune::Decoder model = dtune::Decoder::load(argv[1], options);
  dtune::LoraOptions lora;
  lora.r = static_cast<int64_t>(opt["--rank"]);
  lora.alpha = 2.0 * static_cast<double>(lora.r);
  lora.dropout = 0.0;
  lora.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"};
  model.add_lora(lora, 0);
  model.set_training(true);

  at::manual_seed(0);
  const at::Tensor ids = at::randint(3, model.config().vocab_size, {B, T}, at::kLong);
  at::Tensor labels = ids.clone();
  labels.slice(1, 0, static_cast<int64_t>(opt["--prompt-frac"] * static_cast<double>(T))).fill_(-100);
  const at::Tensor pos = at::arange(T, at::kLong).unsqueeze(0).expand({B, T}).contiguous();

  // The machine may be shared: report the fastest step (least disturbed) and the mean.
  double total_s = 0.0, min_s = 1e30, forward_s = 0.0, loss = 0.0;
  const int steps = static_cast<int>(opt["--steps"]), warmup = static_cast<int>(opt["--warmup"]);
  const char* trace_path = std::getenv("DTUNE_BENCH_TRACE");
  std::unique_ptr<torch::autograd::profiler::RecordProfile> trace;
  for (int step = 0; step < warmup + steps; ++step) {
    if (step == warmup && trace_path != nullptr) {
      trace = std::make_unique<torch::autograd::profiler::RecordProfile>(std::string(trace_path));
    }
    const auto t0 = std::chrono::steady_clock::now();
    const at::Tensor h = model.forward_hidden(ids, pos, dtune::AttentionMask::causal());
    const dtune::LossSum l = model.loss(h, labels);
    const auto t1 = std::chrono::steady_clock::now();
    (l.sum / static_cast<double>(l.num_tokens)).backward();
    for (auto& [key, p] : model.lora_parameters()) p.mutable_grad() = at::Tensor();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    loss = l.sum.item<double>() / static_cast<double>(l.num_tokens);
    if (step >= warmup) {
      total_s += s;
      if (s < min_s) forward_s = std::chrono::duration<double>(t1 - t0).count();
      min_s = std::min(min_s, s);
    }
  }
  trace.reset();  // writes the trace
  const double per_token_ms = 1e3 * min_s / static_cast<double>(B * T);
  std::printf(
      "{\"impl\": \"dtune\", \"seq\": %lld, \"batch\": %lld, \"threads\": %d, \"step_s\": %.4f, "
      "\"min_step_s\": %.4f, \"forward_s\": %.4f, \"ms_per_token\": %.4f, \"loss\": %.5f, \"peak_rss_mib\": %.1f}\n",
      static_cast<long long>(T), static_cast<long long>(B), at::get_num_threads(), total_s / steps,
      min_s, forward_s, per_token_ms, loss, peak_rss_mib());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dtune_model_bench: %s\n", e.what());
    return 1;
  }
}
