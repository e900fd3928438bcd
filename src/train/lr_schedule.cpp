// Warmup + decay multipliers, transcribed from the definitions in transformers' optimization.py.
#include "dtune/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "dtune/core/error.h"

namespace dtune {

LrSchedule::LrSchedule(std::string kind, double peak_lr, int64_t total_steps, int64_t warmup_steps,
                       double warmup_ratio)
    : kind_(std::move(kind)), peak_(peak_lr), total_(total_steps) {
  DTUNE_CHECK(kind_ == "linear" || kind_ == "cosine" || kind_ == "constant",
              "train.lr_scheduler must be linear, cosine or constant, got '", kind_, "'");
  DTUNE_CHECK(total_ > 0, "the run has no optimizer steps (total_steps = ", total_,
              "): the train split is smaller than one global batch; use fewer ranks, a smaller "
              "data.micro_batch_size or train.gradient_accumulation_steps, or more data");
  warmup_ = warmup_steps > 0 ? warmup_steps : static_cast<int64_t>(std::ceil(total_ * warmup_ratio));
}

double LrSchedule::lr(int64_t step) const {
  if (step < warmup_) return peak_ * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_));
  if (kind_ == "constant") return peak_;
  const double rest = static_cast<double>(std::max<int64_t>(1, total_ - warmup_));
  if (kind_ == "linear") return peak_ * std::max(0.0, static_cast<double>(total_ - step) / rest);
  const double progress = static_cast<double>(step - warmup_) / rest;  // cosine, 0.5 cycles
  return peak_ * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * 2.0 * 0.5 * progress)));
}

}  // namespace dtune
