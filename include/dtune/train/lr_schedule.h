// Learning-rate schedule: linear warmup, then linear, cosine or constant, with the exact
// semantics of transformers' get_{linear,cosine,constant}_schedule_with_warmup.
#pragma once

#include <cstdint>
#include <string>

namespace dtune {

class LrSchedule {
 public:
  // kind: linear | cosine | constant. total_steps > 0. warmup_steps > 0 wins over warmup_ratio;
  // otherwise warmup = ceil(total_steps * warmup_ratio), as transformers' TrainingArguments.
  LrSchedule(std::string kind, double peak_lr, int64_t total_steps, int64_t warmup_steps, double warmup_ratio);

  // LR used by optimizer step `step` (0-based). As in transformers, step 0 of a warmup is 0.
  double lr(int64_t step) const;
  int64_t warmup_steps() const { return warmup_; }
  int64_t total_steps() const { return total_; }

 private:
  std::string kind_;
  double peak_;
  int64_t total_;
  int64_t warmup_;
};

}  // namespace dtune
