// The few-row CPU kernel behind decoding: values against an fp64 reference within the fp32
// rounding bound, bitwise independence from thread count, batch rows and row blocking, and the
// cases it must hand back to at::linear.
#include "dtune/kernels/cpu_gemv.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <boost/test/unit_test.hpp>

namespace dtune {
namespace {

// Restores libtorch's intra-op thread count when a test changes it.
struct ThreadCount {
  explicit ThreadCount(int n) : saved(at::get_num_threads()) { at::set_num_threads(n); }
  ~ThreadCount() { at::set_num_threads(saved); }
  int saved;
};

bool kernel_available() {
  const at::Tensor w = at::ones({4, 8});
  return cpu_gemv_applies(at::ones({1, 8}), w, at::Tensor());
}

// Max over outputs of |y - exact| / bound, where exact is the fp64 product and bound is the
// error bound of an fp32 dot product summed as cpu_gemv sums it (8 lanes of in/8 terms, a
// 3-step lane sum, the scalar tail, the bias): gamma_k * sum_i |w_i x_i| (+ |b|) with
// k = in/8 + in%8 + 5 roundings, gamma_k ~ k * 2^-24. Must be <= 1; an indexing or blocking
// error gives O(1 / (k 2^-24)) = 1e4 and more.
double error_over_bound(const at::Tensor& y, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  const int64_t in = w.size(1);
  const at::Tensor xd = x.to(at::kDouble), wd = w.to(at::kDouble);
  const at::Tensor bd = b.defined() ? b.to(at::kDouble) : at::Tensor();
  const at::Tensor exact = at::linear(xd, wd, bd);
  at::Tensor magnitude = at::linear(xd.abs(), wd.abs());
  if (bd.defined()) magnitude = magnitude + bd.abs();
  const double k = static_cast<double>(in / 8 + in % 8 + 5);
  const at::Tensor bound = magnitude * (k * std::ldexp(1.0, -24)) + 1e-30;
  return ((y.to(at::kDouble) - exact).abs() / bound).max().item<double>();
}

BOOST_AUTO_TEST_CASE(matches_the_exact_product_within_the_fp32_bound) {
  if (!kernel_available()) {
    BOOST_TEST_MESSAGE("no AVX2/FMA on this CPU: cpu_gemv is never used here; nothing to check");
    return;
  }
  at::manual_seed(0);
  // (out, in): tails in both dimensions, the SmolLM2 projection shapes, a head-like wide one.
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1, 1}, {3, 7}, {4, 8}, {5, 9}, {13, 17}, {192, 576}, {1536, 576}, {576, 1536}, {4099, 65}};
  for (const auto& [out, in] : shapes) {
    const at::Tensor w = at::randn({out, in});
    const at::Tensor b = at::randn({out});
    for (int64_t rows : {int64_t{1}, int64_t{3}, kCpuGemvMaxRows}) {
      const at::Tensor x = at::randn({rows, 1, in});  // (B, T=1, in), as in decoding
      for (const bool bias : {false, true}) {
        const at::Tensor bb = bias ? b : at::Tensor();
        BOOST_REQUIRE(cpu_gemv_applies(x, w, bb));
        const at::Tensor y = cpu_gemv(x, w, bb);
        BOOST_TEST((y.sizes() == at::IntArrayRef{rows, 1, out}));
        const double r = error_over_bound(y, x, w, bb);
        BOOST_TEST(r <= 1.0, "out " << out << " in " << in << " rows " << rows << " bias " << bias
                                    << ": error / bound = " << r);
      }
    }
  }
}

// Each output's arithmetic is fixed: the same bits for 1, 2 or 3 threads (different row blocks),
// and a row of a batch equals that row computed alone (batched generation = one by one).
BOOST_AUTO_TEST_CASE(bits_do_not_depend_on_threads_or_batch) {
  if (!kernel_available()) return;
  at::manual_seed(1);
  const at::Tensor w = at::randn({1001, 67});
  const at::Tensor b = at::randn({1001});
  const at::Tensor x = at::randn({5, 67});
  at::Tensor one_thread;
  {
    ThreadCount t(1);
    one_thread = cpu_gemv(x, w, b);
  }
  for (int threads : {2, 3}) {
    ThreadCount t(threads);
    BOOST_TEST(at::equal(cpu_gemv(x, w, b), one_thread), threads << " threads");
  }
  for (int64_t r = 0; r < 5; ++r) {
    BOOST_TEST(at::equal(cpu_gemv(x.slice(0, r, r + 1), w, b)[0], one_thread[r]), "row " << r);
  }
}

BOOST_AUTO_TEST_CASE(hands_back_what_it_does_not_take) {
  if (!kernel_available()) return;
  const at::Tensor w = at::randn({16, 8});
  const at::Tensor x = at::randn({2, 8});
  BOOST_TEST(cpu_gemv_applies(x, w, at::Tensor()));
  BOOST_TEST(!cpu_gemv_applies(at::randn({kCpuGemvMaxRows + 1, 8}), w, at::Tensor()));  // GEMM-sized
  BOOST_TEST(!cpu_gemv_applies(x.clone().requires_grad_(true), w, at::Tensor()));      // autograd
  BOOST_TEST(!cpu_gemv_applies(x, w.clone().requires_grad_(true), at::Tensor()));
  BOOST_TEST(!cpu_gemv_applies(x.to(at::kBFloat16), w.to(at::kBFloat16), at::Tensor()));  // not fp32
  BOOST_TEST(!cpu_gemv_applies(x, w.t().contiguous().t(), at::Tensor()));             // strided weight
  BOOST_TEST(!cpu_gemv_applies(at::randn({2, 9}), w, at::Tensor()));                  // wrong in
  BOOST_TEST(!cpu_gemv_applies(x, w, at::randn({15})));                               // wrong bias
  BOOST_TEST(!cpu_gemv_applies(at::randn({0, 8}), w, at::Tensor()));                  // no rows
}

}  // namespace
}  // namespace dtune
