// Chunked LM head + cross-entropy: equal to the unchunked reference and its autograd gradient.
#include "dtune/model/lm_loss.h"

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

}  // namespace
}  // namespace dtune
