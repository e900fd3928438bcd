// One optimizer update over the summed LoRA gradients, with the rules of transformers' Trainer
// and torch.amp.GradScaler for a step whose gradients are not finite (fp16 overflow): the AdamW
// update is skipped, the loss scale halves, and the LR schedule does not advance.
#pragma once

#include <cstdint>

namespace at {
class Tensor;
}  // namespace at

namespace dtune {

class AdamW;
class LossScaler;
class LrSchedule;

// The LR of the next optimizer update: schedule.lr(n) with n = the updates applied so far
// (optimizer.steps_taken()), not the steps run. A skipped step leaves n as it was, as
// transformers' Trainer calls lr_scheduler.step() only when accelerator.optimizer_step_was_skipped
// is false (trainer.py, inner training loop; accelerate's AcceleratedOptimizer.step_was_skipped
// is set when GradScaler skipped optimizer.step()).
double lr_of_next_update(const LrSchedule& schedule, const AdamW& optimizer);

struct OptimizerUpdate {
  bool applied = false;  // false: non-finite gradients; only the loss scale changed
  double lr = 0;         // the LR the update used (when skipped: the LR it would have used)
};

// grads: the flat fp32 gradient bucket, summed over ranks and unscaled; grad_norm: its L2 norm
// (non-finite when any value is, the all-rank verdict). Tells scaler the verdict; when finite,
// clips grads in place to max_grad_norm (0 = off; clip_grad_norm, grad_clip.h, as
// torch.nn.utils.clip_grad_norm_) and runs optimizer.step(lr_of_next_update(...)).
OptimizerUpdate apply_optimizer_update(AdamW& optimizer, LossScaler& scaler, const LrSchedule& schedule,
                                       at::Tensor& grads, double grad_norm, double max_grad_norm);

}  // namespace dtune
