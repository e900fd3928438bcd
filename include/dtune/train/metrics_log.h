// What the user watches during training (rank 0 only): metrics.jsonl and TensorBoard events in
// the output folder, and on stderr a progress bar (TTY) or one line every log_every steps.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dtune {

class TensorBoardWriter;

struct MetricsOptions {
  std::string output_dir;       // metrics.jsonl and tb/ go here
  bool tensorboard = true;
  std::string progress = "auto";  // auto | bar | lines | off
  int64_t log_every = 1;        // steps between lines (lines mode)
  int64_t total_steps = 0;      // for the bar and the ETA
  // Resume: keep the existing metrics.jsonl rows and TensorBoard events (tb/) up to this step
  // (a crashed run may have logged steps past its last checkpoint, which the resumed run logs
  // again) and append; -1 = new file.
  int64_t resume_step = -1;
};

using Metrics = std::vector<std::pair<std::string, double>>;  // ordered name -> value

class MetricsLog {
 public:
  explicit MetricsLog(MetricsOptions options);
  ~MetricsLog();

  // A training step's metrics ("loss", "lr", "grad_norm", "tokens_per_s", ...).
  void log_step(int64_t step, const Metrics& metrics);
  // Eval results, any step; printed as a line in every mode but off.
  void log_eval(int64_t step, const Metrics& metrics);
  // An epoch's totals over all ranks ("epoch", "rows", "tokens", ...), logged when the epoch
  // ends at step; printed as a line in every mode but off.
  void log_epoch(int64_t step, const Metrics& metrics);
  // Ends the progress bar line (before other output and at the end).
  void finish_line();

 private:
  void write_jsonl(const char* kind, int64_t step, const Metrics& metrics);
  MetricsOptions options_;
  bool bar_ = false;
  std::FILE* jsonl_ = nullptr;
  std::unique_ptr<TensorBoardWriter> tb_;
  double start_s_;
  int64_t first_step_ = -1;
  bool line_open_ = false;
};

}  // namespace dtune
