// Chunked LM head + cross-entropy: equal to the unchunked reference and its autograd gradient;
// the selection of loss positions from HF-convention and shifted labels.
#include "dtune/model/lm_loss.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "dtune/core/error.h"
#include "dtune/kernels/cpu_cross_entropy.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <boost/test/unit_test.hpp>

namespace dtune {
namespace {

BOOST_AUTO_TEST_CASE(chunked_loss_and_grad_equal_full_cross_entropy) {
  at::manual_seed(0);
  const at::Tensor w = at::randn({50, 8});               // (V, H)
  const at::Tensor targets = at::randint(0, 50, {13}, at::kLong);
  const at::Tensor h0 = at::randn({13, 8});
  // Reference: full logits, at::cross_entropy (sum), autograd.
  at::Tensor h_ref = h0.clone().requires_grad_(true);
  const at::Tensor ref = at::cross_entropy_loss(at::matmul(h_ref, w.t()), targets, {},
                                                at::Reduction::Sum);
  ref.backward();
  for (int64_t chunk : {1, 4, 13, 100}) {
    at::Tensor h = h0.clone().requires_grad_(true);
    const at::Tensor sum = chunked_lm_loss_sum(h, w, targets, chunk);
    // fp32; only the summation order differs.
    BOOST_TEST(std::abs(sum.item<double>() - ref.item<double>()) <= 1e-5 * ref.item<double>(),
               "chunk " << chunk);
    (sum * 3.0).backward();  // the incoming gradient scales the stored one
    BOOST_TEST(at::allclose(h.grad(), h_ref.grad() * 3.0, 1e-5, 1e-6), "chunk " << chunk);
  }
  // Without grad the same value comes out and nothing is kept.
  at::NoGradGuard no_grad;
  BOOST_TEST(std::abs(chunked_lm_loss_sum(h0, w, targets, 5).item<double>() - ref.item<double>()) <=
             1e-5 * ref.item<double>());
}

// The loss weight (loss scale / global tokens) reaches the gradient in fp32. Weight 1/3 is
// 0.333984375 in bf16, 0.2% high: the least-squares scale of the bf16 gradient against the fp32
// reference must be 1/3 to 1e-3 (the per-element bf16 noise averages out over 1500 x 64 values,
// a rounded weight does not), and each element is the unit-weight gradient / 3 rounded once
// (2^-8 relative: bf16 keeps 8 significant bits). 1500 rows cross the backward's 1024-row blocks.
BOOST_AUTO_TEST_CASE(bf16_loss_weight_multiplies_in_fp32) {
  at::manual_seed(2);
  const int64_t n = 1500, h = 64, v = 300;
  const at::Tensor w = at::randn({v, h}) * 0.1;
  const at::Tensor targets = at::randint(0, v, {n}, at::kLong);
  const at::Tensor h0 = at::randn({n, h});
  const double weight = 1.0 / 3.0;
  at::Tensor h_ref = h0.clone().requires_grad_(true);  // fp32 reference
  (at::cross_entropy_loss(at::matmul(h_ref, w.t()), targets, {}, at::Reduction::Sum) * weight).backward();
  const at::Tensor ref = h_ref.grad().to(at::kDouble);

  auto bf16_grad = [&](double wt) {
    at::Tensor x = h0.to(at::kBFloat16).requires_grad_(true);
    (chunked_lm_loss_sum(x, w.to(at::kBFloat16), targets, 512) * wt).backward();
    BOOST_REQUIRE(x.grad().scalar_type() == at::kBFloat16);
    return x.grad().to(at::kDouble);
  };
  const at::Tensor got = bf16_grad(weight);
  const double scale = ((got * ref).sum() / (ref * ref).sum()).item<double>();
  BOOST_TEST(std::abs(scale - 1.0) <= 1e-3, "least-squares scale vs fp32 reference " << scale);
  const at::Tensor unit = bf16_grad(1.0);  // exact: the stored gradient times 1
  const at::Tensor exact = unit * weight;
  BOOST_TEST(((got - exact).abs() <= exact.abs() * std::ldexp(1.0, -8)).all().item<bool>(),
             "max relative " << ((got - exact).abs() / exact.abs().clamp_min(1e-30)).max().item<double>());
}

// fp16 with a weight above 65504 (a loss scale of 65536 over a single token): the weight must not
// become inf; the gradient is the unit-weight one times the weight, rounded once (2^-11: fp16
// keeps 11 significant bits).
BOOST_AUTO_TEST_CASE(fp16_loss_weight_above_fp16_max_stays_finite) {
  at::manual_seed(3);
  const at::Tensor w = at::randn({50, 8}) * 0.01;  // |grad| << 65504 / 1e5
  const at::Tensor targets = at::randint(0, 50, {13}, at::kLong);
  const at::Tensor h0 = at::randn({13, 8});
  auto fp16_grad = [&](double wt) {
    at::Tensor x = h0.to(at::kHalf).requires_grad_(true);
    (chunked_lm_loss_sum(x, w.to(at::kHalf), targets, 4) * wt).backward();
    return x.grad().to(at::kDouble);
  };
  const double weight = 1e5;
  const at::Tensor got = fp16_grad(weight);
  const at::Tensor exact = fp16_grad(1.0) * weight;
  BOOST_TEST(at::isfinite(got).all().item<bool>());
  BOOST_TEST(exact.abs().max().item<double>() > 100.0);  // the test is not vacuous
  BOOST_TEST(((got - exact).abs() <= exact.abs() * std::ldexp(1.0, -11)).all().item<bool>());
}

// Position t of row b is selected when the token at t + 1 has a label (unshifted) or t itself has
// one (shifted); indices are flat (b * T + t), targets are the labels they predict.
at::Tensor longs(std::vector<int64_t> v) { return at::tensor(v, at::kLong); }

BOOST_AUTO_TEST_CASE(loss_targets_select_the_labelled_positions) {
  constexpr int64_t X = kIgnoreIndex;
  const at::Tensor labels = longs({X, X, 7, 8, X, /* row 1 */ X, 4, X, X, 9}).view({2, 5});
  const LossTargets u = select_loss_targets(labels, /*labels_shifted=*/false);
  BOOST_TEST(u.count == 4);
  BOOST_TEST(at::equal(u.positions, longs({1, 2, 5, 8})));
  BOOST_TEST(at::equal(u.targets, longs({7, 8, 4, 9})));
  const LossTargets s = select_loss_targets(labels, /*labels_shifted=*/true);
  BOOST_TEST(s.count == 4);
  BOOST_TEST(at::equal(s.positions, longs({2, 3, 6, 9})));
  BOOST_TEST(at::equal(s.targets, longs({7, 8, 4, 9})));
  BOOST_TEST(select_loss_targets(at::full({1, 3}, X, at::kLong), false).count == 0);
}

// The fused CPU row kernel against at::cross_entropy_loss (sum) and autograd's gradient, for
// vocabularies that leave a partial 16-lane tail, fp32 and bf16.
BOOST_AUTO_TEST_CASE(fused_cpu_cross_entropy_matches_aten) {
  if (!cpu_cross_entropy_applies(at::zeros({1, 16}))) {
    BOOST_TEST_MESSAGE("no AVX-512F: the fused kernel is not used on this CPU; skipped");
    return;
  }
  for (int64_t V : {16, 50, 49157}) {
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      at::manual_seed(V);
      const at::Tensor logits = (at::randn({7, V}) * 4.0).to(dtype);
      const at::Tensor targets = at::randint(0, V, {7}, at::kLong);
      // Reference in fp64 from the same (rounded) logits, as transformers upcasts them.
      const at::Tensor x = logits.to(at::kDouble).requires_grad_(true);
      const at::Tensor ref = at::cross_entropy_loss(x, targets, {}, at::Reduction::Sum);
      ref.backward();
      const at::Tensor work = logits.clone();
      const double loss = cpu_cross_entropy_(work, targets, /*write_grad=*/true);
      const std::string what = std::string(c10::toString(dtype)) + " V " + std::to_string(V);
      // fp32 per-row arithmetic: ~1e-6 relative of each row's log-sum-exp.
      BOOST_TEST(std::abs(loss - ref.item<double>()) <= 1e-5 * std::abs(ref.item<double>()), what << ": " << loss << " vs " << ref.item<double>());
      // The gradient in the logits' dtype: fp32 to 1e-6; bf16 rounds each value (2^-9 relative).
      const double tol = dtype == at::kFloat ? 1e-6 : 4e-3;
      BOOST_TEST((work.to(at::kDouble) - x.grad()).abs().max().item<double>() <= tol, what << ": " << (work.to(at::kDouble) - x.grad()).abs().max().item<double>());
      BOOST_TEST(cpu_cross_entropy_(logits.clone(), targets, /*write_grad=*/false) == loss, what);
    }
  }
}

BOOST_AUTO_TEST_CASE(fused_cpu_cross_entropy_is_thread_count_independent_and_checks_targets) {
  if (!cpu_cross_entropy_applies(at::zeros({1, 16}))) return;
  at::manual_seed(1);
  const at::Tensor logits = at::randn({9, 1000});
  const at::Tensor targets = at::randint(0, 1000, {9}, at::kLong);
  const int saved = at::get_num_threads();
  at::set_num_threads(1);
  const at::Tensor g1 = logits.clone();
  const double l1 = cpu_cross_entropy_(g1, targets, true);
  at::set_num_threads(3);
  const at::Tensor g3 = logits.clone();
  const double l3 = cpu_cross_entropy_(g3, targets, true);
  at::set_num_threads(saved);
  BOOST_TEST(l1 == l3);
  BOOST_TEST(at::equal(g1, g3));
  BOOST_CHECK_THROW(cpu_cross_entropy_(logits.clone(), at::full({9}, 1000, at::kLong), false), Error);
  BOOST_CHECK_THROW(cpu_cross_entropy_(logits.clone(), at::full({9}, -1, at::kLong), false), Error);
}

}  // namespace
}  // namespace dtune
