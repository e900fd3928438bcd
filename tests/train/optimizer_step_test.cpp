// Tests src/train/optimizer_step.cpp: a non-finite step is skipped without moving the LR schedule
// (transformers' Trainer steps its scheduler only when the optimizer step was not skipped), and
// an applied step is clip_grad_norm_ then AdamW at the schedule's LR.
#include "dtune/train/optimizer_step.h"

#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "dtune/train/adamw.h"
#include "dtune/train/loss_scaler.h"
#include "dtune/train/lr_schedule.h"

namespace dtune {
namespace {

// A forced fp16 overflow at step 2 of a linear warmup: steps 1, 2, 3 use lr(0), lr(1) (skipped,
// nothing applied), lr(1) again. The run's parameters equal a reference run that never saw the
// skipped step, bit for bit.
BOOST_AUTO_TEST_CASE(skipped_step_does_not_advance_the_schedule) {
  const LrSchedule schedule("linear", 1e-3, /*total_steps=*/10, /*warmup_steps=*/4, 0.0);
  BOOST_REQUIRE(schedule.lr(1) != schedule.lr(2));  // the test can tell the positions apart
  at::manual_seed(0);
  const at::Tensor g1 = at::randn({6}), g3 = at::randn({6});
  const at::Tensor p0 = at::randn({6});

  at::Tensor params = p0.clone(), grads = at::zeros({6});
  AdamW optimizer(params, grads, AdamWOptions{});
  LossScaler scaler(/*enabled=*/true, 65536.0, 2000);
  auto run_step = [&](const at::Tensor& g) {
    grads.copy_(g);
    const double norm = grads.norm().item<double>();
    return apply_optimizer_update(optimizer, scaler, schedule, grads, norm, /*max_grad_norm=*/0.0);
  };
  const OptimizerUpdate s1 = run_step(g1);
  BOOST_TEST(s1.applied);
  BOOST_TEST(s1.lr == schedule.lr(0));
  const at::Tensor after_1 = params.clone();
  const OptimizerUpdate s2 = run_step(at::full({6}, std::numeric_limits<float>::infinity()));
  BOOST_TEST(!s2.applied);
  BOOST_TEST(s2.lr == schedule.lr(1));
  BOOST_TEST(at::equal(params, after_1));  // nothing applied
  BOOST_TEST(optimizer.steps_taken() == 1);
  BOOST_TEST(scaler.scale() == 32768.0);  // and the scale halved
  const OptimizerUpdate s3 = run_step(g3);
  BOOST_TEST(s3.applied);
  BOOST_TEST(s3.lr == schedule.lr(1));  // the step after the skip uses the schedule's 2nd LR
  BOOST_TEST(lr_of_next_update(schedule, optimizer) == schedule.lr(2));

  at::Tensor ref_params = p0.clone(), ref_grads = at::zeros({6});
  AdamW reference(ref_params, ref_grads, AdamWOptions{});
  ref_grads.copy_(g1);
  reference.step(schedule.lr(0));
  ref_grads.copy_(g3);
  reference.step(schedule.lr(1));
  BOOST_TEST(at::equal(params, ref_params));
}

// Clipping as torch.nn.utils.clip_grad_norm_: grads *= max / (norm + 1e-6) when that is < 1;
// below the threshold the gradients are left as they are.
BOOST_AUTO_TEST_CASE(applied_step_clips_as_clip_grad_norm) {
  const LrSchedule schedule("constant", 1e-2, 5, 0, 0.0);
  at::Tensor params = at::zeros({2}), grads = at::zeros({2});
  AdamW optimizer(params, grads, AdamWOptions{});
  LossScaler scaler(/*enabled=*/false, 1.0, 2000);
  grads.copy_(at::tensor({3.0f, 4.0f}));  // norm 5
  BOOST_TEST(apply_optimizer_update(optimizer, scaler, schedule, grads, 5.0, /*max_grad_norm=*/1.0).applied);
  const double coef = 1.0 / (5.0 + 1e-6);
  BOOST_TEST(std::abs(grads[0].item<double>() - 3.0 * coef) <= 1e-7);
  BOOST_TEST(std::abs(grads[1].item<double>() - 4.0 * coef) <= 1e-7);
  grads.copy_(at::tensor({0.3f, 0.4f}));  // norm 0.5 < 1: unchanged
  apply_optimizer_update(optimizer, scaler, schedule, grads, 0.5, 1.0);
  BOOST_TEST(grads[0].item<float>() == 0.3f);
  // bf16/fp32 (scaler disabled): a NaN norm still skips, and the schedule stays put.
  const OptimizerUpdate nan = apply_optimizer_update(optimizer, scaler, schedule, grads,
                                                     std::nan(""), 1.0);
  BOOST_TEST(!nan.applied);
  BOOST_TEST(optimizer.steps_taken() == 2);
}

}  // namespace
}  // namespace dtune
