// The fused CPU RMSNorm, SwiGLU gate and rotary embedding against their ATen formulations (what the model runs
// elsewhere, HF's numerics): values and input gradients, fp32 and bf16, row lengths with a
// partial 16-lane tail.
#include <algorithm>
#include <string>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <boost/test/unit_test.hpp>

#include "dtune/kernels/cpu_rms_norm.h"
#include "dtune/kernels/cpu_rotary.h"
#include "dtune/kernels/cpu_swiglu.h"

namespace dtune {
namespace {

// max |a - b| / max(max |b|, 1).
double scaled_diff(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>() / scale;
}

// HF LlamaRMSNorm in ATen ops, in fp64 for the reference.
at::Tensor reference_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  return w * (x * at::rsqrt(x.pow(2).mean(-1, true) + eps));
}

bool supported() { return cpu_rms_norm_applies(at::zeros({1, 16}), at::zeros({16})); }

// fp32: one fp32 rounding per op, ~1e-6 relative; bf16: outputs and gradients are rounded to
// bf16 (2^-9 relative) after fp32 arithmetic, so 1e-2 of the scale.
double tolerance(at::ScalarType dtype) { return dtype == at::kFloat ? 2e-6 : 1e-2; }

BOOST_AUTO_TEST_CASE(rms_norm_matches_the_reference) {
  if (!supported()) {
    BOOST_TEST_MESSAGE("no AVX-512F: the fused kernels are not used on this CPU; skipped");
    return;
  }
  for (int64_t H : {16, 50, 576}) {
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      at::manual_seed(H);
      const at::Tensor x0 = (at::randn({3, 5, H}) * 3.0).to(dtype);
      const at::Tensor w = (at::rand({H}) + 0.5).to(dtype);
      const at::Tensor dy = at::randn({3, 5, H}).to(dtype);
      at::Tensor x = x0.clone().requires_grad_(true);
      const at::Tensor y = cpu_rms_norm(x, w, 1e-5);
      y.backward(dy);
      at::Tensor xr = x0.to(at::kDouble).requires_grad_(true);
      const at::Tensor yr = reference_rms_norm(xr, w.to(at::kDouble), 1e-5);
      yr.backward(dy.to(at::kDouble));
      const std::string what = std::string(c10::toString(dtype)) + " H " + std::to_string(H);
      BOOST_TEST(y.scalar_type() == dtype);
      BOOST_TEST(scaled_diff(y, yr) <= tolerance(dtype), what << " y: " << scaled_diff(y, yr));
      BOOST_TEST(scaled_diff(x.grad(), xr.grad()) <= tolerance(dtype), what << " dx: " << scaled_diff(x.grad(), xr.grad()));
    }
  }
  // A weight that trains, a strided x or a dtype mismatch go to the ATen path instead.
  BOOST_TEST(!cpu_rms_norm_applies(at::zeros({2, 16}), at::zeros({16}).requires_grad_(true)));
  BOOST_TEST(!cpu_rms_norm_applies(at::zeros({16, 2}).t(), at::zeros({16})));
  BOOST_TEST(!cpu_rms_norm_applies(at::zeros({2, 16}), at::zeros({16}, at::kBFloat16)));
}

BOOST_AUTO_TEST_CASE(swiglu_matches_the_reference) {
  if (!supported()) return;
  for (int64_t n : {16, 37, 1536}) {
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      at::manual_seed(n);
      // Gates reach far into both tails of the sigmoid (exp overflow must give 0, not NaN).
      at::Tensor g0 = (at::randn({4, n}) * 4.0);
      g0[0][0] = -120.0;
      g0[0][1] = 120.0;
      g0 = g0.to(dtype);
      const at::Tensor u0 = at::randn({4, n}).to(dtype), dy = at::randn({4, n}).to(dtype);
      at::Tensor g = g0.clone().requires_grad_(true), u = u0.clone().requires_grad_(true);
      const at::Tensor y = cpu_swiglu(g, u);
      y.backward(dy);
      at::Tensor gr = g0.to(at::kDouble).requires_grad_(true), ur = u0.to(at::kDouble).requires_grad_(true);
      const at::Tensor yr = at::silu(gr) * ur;
      yr.backward(dy.to(at::kDouble));
      const std::string what = std::string(c10::toString(dtype)) + " n " + std::to_string(n);
      BOOST_TEST(scaled_diff(y, yr) <= tolerance(dtype), what << " y: " << scaled_diff(y, yr));
      BOOST_TEST(scaled_diff(g.grad(), gr.grad()) <= tolerance(dtype), what << " dg: " << scaled_diff(g.grad(), gr.grad()));
      BOOST_TEST(scaled_diff(u.grad(), ur.grad()) <= tolerance(dtype), what << " du: " << scaled_diff(u.grad(), ur.grad()));
      BOOST_TEST(!at::isnan(g.grad()).any().item<bool>(), what);
    }
  }
}

// rotate_half as HF writes it.
at::Tensor reference_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const at::Tensor rotated = at::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

BOOST_AUTO_TEST_CASE(rotary_matches_the_reference) {
  if (!supported()) return;
  for (int64_t D : {32, 64, 128}) {
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      at::manual_seed(D);
      // x strided as the model's (B, T, n, D) projection viewed as (B, n, T, D).
      const at::Tensor x0 = at::randn({2, 7, 3, D}).transpose(1, 2).to(dtype);
      // Unrelated cos and sin in both halves, so a swapped half or sign shows.
      const at::Tensor cos = at::randn({2, 7, D}).to(dtype), sin = at::randn({2, 7, D}).to(dtype);
      const at::Tensor dy = at::randn({2, 3, 7, D}).to(dtype);
      at::Tensor x = x0.detach().requires_grad_(true);
      const at::Tensor y = cpu_rotary(x, cos, sin);
      y.backward(dy);
      at::Tensor xr = x0.to(at::kDouble).requires_grad_(true);
      const at::Tensor yr = reference_rotary(xr, cos.to(at::kDouble), sin.to(at::kDouble));
      yr.backward(dy.to(at::kDouble));
      const std::string what = std::string(c10::toString(dtype)) + " D " + std::to_string(D);
      BOOST_TEST(y.sizes() == x0.sizes());
      BOOST_TEST(scaled_diff(y, yr) <= tolerance(dtype), what << " y: " << scaled_diff(y, yr));
      BOOST_TEST(scaled_diff(x.grad(), xr.grad()) <= tolerance(dtype), what << " dx: " << scaled_diff(x.grad(), xr.grad()));
    }
  }
  BOOST_TEST(!cpu_rotary_applies(at::zeros({1, 2, 3, 48}), at::zeros({1, 3, 48}), at::zeros({1, 3, 48})));
}

}  // namespace
}  // namespace dtune
