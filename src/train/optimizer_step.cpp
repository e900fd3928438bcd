// Clip, check and update (see optimizer_step.h): the schedule position is the number of applied
// updates, so an fp16 overflow step does not use up a step of the schedule.
#include "dtune/train/optimizer_step.h"

#include <ATen/ATen.h>

#include <cmath>

#include "dtune/train/adamw.h"
#include "dtune/train/grad_clip.h"
#include "dtune/train/loss_scaler.h"
#include "dtune/train/lr_schedule.h"

namespace dtune {

double lr_of_next_update(const LrSchedule& schedule, const AdamW& optimizer) {
  return schedule.lr(optimizer.steps_taken());
}

OptimizerUpdate apply_optimizer_update(AdamW& optimizer, LossScaler& scaler, const LrSchedule& schedule,
                                       at::Tensor& grads, double grad_norm, double max_grad_norm) {
  OptimizerUpdate out;
  out.lr = lr_of_next_update(schedule, optimizer);
  out.applied = scaler.update(/*found_nonfinite=*/!std::isfinite(grad_norm));
  if (!out.applied) return out;
  clip_grad_norm(grads, grad_norm, max_grad_norm);
  optimizer.step(out.lr);
  return out;
}

}  // namespace dtune
