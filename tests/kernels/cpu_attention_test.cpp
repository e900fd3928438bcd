// The fused CPU attention kernel against an fp64 reference (explicit mask, softmax, autograd):
// outputs and the gradients of q, k and v, plain causal and packed windows, GQA, head dims and
// lengths that leave partial blocks; bf16; independence from the thread count; bad inputs.
#include "dtune/kernels/cpu_attention.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <boost/test/unit_test.hpp>

#include "dtune/core/error.h"
#include "dtune/model/attention_mask.h"

namespace dtune {
namespace {

struct Case {
  int64_t B, H, Hkv, T, D;
  bool packed;
};

std::string name(const Case& c, at::ScalarType dtype) {
  return std::string(c10::toString(dtype)) + " B" + std::to_string(c.B) + " H" + std::to_string(c.H) + "/" +
         std::to_string(c.Hkv) + " T" + std::to_string(c.T) + " D" + std::to_string(c.D) +
         (c.packed ? " packed" : " causal");
}

// Sequence ids of packed rows: runs of uneven lengths (one of a single token), then a pad run.
at::Tensor packed_ids(int64_t B, int64_t T) {
  std::vector<int64_t> ids;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int64_t> runs = {17 + 11 * b, 1, 70, 45};
    int64_t t = 0, id = 0;
    for (int64_t r : runs) {
      for (int64_t i = 0; i < r && t < T; ++i, ++t) ids.push_back(id);
      ++id;
    }
    for (; t < T; ++t) ids.push_back(-1);  // padding run
  }
  return at::tensor(ids, at::kLong).view({B, T});
}

// fp64 reference through autograd: softmax(scale q k^T + mask) v, q head h on kv head h / group.
struct Reference {
  at::Tensor out, dq, dk, dv;
};

Reference reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& dout,
                    const at::Tensor& window_starts) {
  at::AutoGradMode grad(true);
  const int64_t H = q.size(1), Hkv = k.size(1), T = q.size(2), D = q.size(3);
  at::Tensor q64 = q.to(at::kDouble).detach().requires_grad_(true);
  at::Tensor k64 = k.to(at::kDouble).detach().requires_grad_(true);
  at::Tensor v64 = v.to(at::kDouble).detach().requires_grad_(true);
  const at::Tensor kk = k64.repeat_interleave(H / Hkv, 1), vv = v64.repeat_interleave(H / Hkv, 1);
  const at::Tensor t = at::arange(T, at::kLong);
  at::Tensor allowed = (t.view({1, T}) <= t.view({T, 1})).unsqueeze(0);  // (1, Tq, Tk)
  if (window_starts.defined()) allowed = allowed & (t.view({1, 1, T}) >= window_starts.unsqueeze(2));
  const at::Tensor scores =
      at::matmul(q64, kk.transpose(-1, -2)) / std::sqrt(static_cast<double>(D));
  const at::Tensor p = at::softmax(scores.masked_fill(allowed.unsqueeze(1).logical_not(), -INFINITY), -1);
  Reference r;
  r.out = at::matmul(p, vv);
  r.out.backward(dout.to(at::kDouble));
  r.dq = q64.grad();
  r.dk = k64.grad();
  r.dv = v64.grad();
  return r;
}

// |got - want| <= rel * max(max|want|, 1) everywhere (inputs are O(1); with one key the true
// dq and dk are exactly 0 and fp32 leaves ~1e-7).
void check_close(const at::Tensor& got, const at::Tensor& want, double rel, const std::string& what) {
  const double scale = std::max(want.abs().max().item<double>(), 1.0);
  const double err = (got.to(at::kDouble) - want).abs().max().item<double>();
  BOOST_TEST(err <= rel * scale, what << ": max error " << err << " > " << rel << " x " << scale);
}

struct Run {
  at::Tensor out, dq, dk, dv;
};

Run run_kernel(const at::Tensor& q0, const at::Tensor& k0, const at::Tensor& v0, const at::Tensor& dout,
               const at::Tensor& window_starts) {
  at::AutoGradMode grad(true);
  at::Tensor q = q0.detach().requires_grad_(true), k = k0.detach().requires_grad_(true),
             v = v0.detach().requires_grad_(true);
  Run r;
  r.out = cpu_attention(q, k, v, window_starts);
  r.out.backward(dout);
  r.dq = q.grad();
  r.dk = k.grad();
  r.dv = v.grad();
  return r;
}

bool supported() { return cpu_attention_supported(at::kFloat, at::kCPU, 64, 512); }

const std::vector<Case> kCases = {
    {1, 2, 2, 1, 16, false},     // one token
    {2, 6, 2, 37, 64, false},    // one partial block, GQA 3
    {1, 4, 4, 64, 64, false},    // exactly one block
    {2, 6, 3, 200, 80, false},   // partial last block; D = 80 leaves a 16-column tile
    {1, 9, 3, 130, 64, true},    // packed runs crossing block boundaries, a one-token run, pads
    {2, 4, 1, 160, 128, true},   // packed, MQA, D = 128 (two 64-column tiles)
    {1, 3, 3, 300, 32, false},   // five blocks
};

BOOST_AUTO_TEST_CASE(fp32_matches_fp64_reference) {
  if (!supported()) {
    BOOST_TEST_MESSAGE("no AVX-512F: cpu_attention is not used on this CPU; skipped");
    return;
  }
  for (const Case& c : kCases) {
    at::manual_seed(c.T * 7 + c.D);
    // The q scale spreads the softmax, so masked-out keys would change results visibly.
    const at::Tensor q = at::randn({c.B, c.T, c.H, c.D}).transpose(1, 2) * 2.0;  // strided like the model's
    const at::Tensor k = at::randn({c.B, c.Hkv, c.T, c.D}), v = at::randn({c.B, c.Hkv, c.T, c.D});
    const at::Tensor dout = at::randn({c.B, c.H, c.T, c.D});
    const at::Tensor ws = c.packed ? AttentionMask::packed(packed_ids(c.B, c.T)).window_starts() : at::Tensor();
    const Reference ref = reference(q, k, v, dout, ws);
    const Run got = run_kernel(q, k, v, dout, ws);
    // fp32 accumulation over <= 300 keys and 128 dims: a few 1e-6 relative; 2e-5 leaves room.
    // A wrong mask or block bound moves values by O(0.1).
    check_close(got.out, ref.out, 2e-5, name(c, at::kFloat) + " out");
    check_close(got.dq, ref.dq, 2e-5, name(c, at::kFloat) + " dq");
    check_close(got.dk, ref.dk, 2e-5, name(c, at::kFloat) + " dk");
    check_close(got.dv, ref.dv, 2e-5, name(c, at::kFloat) + " dv");
    BOOST_TEST(got.out.sizes() == q.sizes());
    BOOST_TEST(got.dk.sizes() == k.sizes());
  }
}

BOOST_AUTO_TEST_CASE(bf16_matches_fp64_reference_of_the_rounded_inputs) {
  if (!supported()) return;
  for (const Case& c : {kCases[1], kCases[4]}) {
    at::manual_seed(5);
    const at::Tensor q = at::randn({c.B, c.H, c.T, c.D}).to(at::kBFloat16);
    const at::Tensor k = at::randn({c.B, c.Hkv, c.T, c.D}).to(at::kBFloat16);
    const at::Tensor v = at::randn({c.B, c.Hkv, c.T, c.D}).to(at::kBFloat16);
    const at::Tensor dout = at::randn({c.B, c.H, c.T, c.D}).to(at::kBFloat16);
    const at::Tensor ws = c.packed ? AttentionMask::packed(packed_ids(c.B, c.T)).window_starts() : at::Tensor();
    const Reference ref = reference(q, k, v, dout, ws);
    const Run got = run_kernel(q, k, v, dout, ws);
    BOOST_TEST(got.out.scalar_type() == at::kBFloat16);
    BOOST_TEST(got.dq.scalar_type() == at::kBFloat16);
    // fp32 arithmetic, one rounding to bf16 at the end (2^-9 relative) and the bf16 output
    // that Delta = rowsum(dO * O) reads: 1e-2 of the largest value.
    check_close(got.out, ref.out, 1e-2, name(c, at::kBFloat16) + " out");
    check_close(got.dq, ref.dq, 1e-2, name(c, at::kBFloat16) + " dq");
    check_close(got.dk, ref.dk, 1e-2, name(c, at::kBFloat16) + " dk");
    check_close(got.dv, ref.dv, 1e-2, name(c, at::kBFloat16) + " dv");
  }
}

BOOST_AUTO_TEST_CASE(agrees_with_sdpa) {
  if (!supported()) return;
  at::manual_seed(3);
  const at::Tensor q = at::randn({2, 9, 150, 64}), k = at::randn({2, 3, 150, 64}), v = at::randn({2, 3, 150, 64});
  const at::NoGradGuard no_grad;
  const at::Tensor sdpa = at::scaled_dot_product_attention(q, k, v, std::nullopt, 0.0, /*is_causal=*/true,
                                                           std::nullopt, /*enable_gqa=*/true);
  BOOST_TEST(at::allclose(cpu_attention(q, k, v, at::Tensor()), sdpa, 1e-5, 1e-5));
}

BOOST_AUTO_TEST_CASE(results_do_not_depend_on_the_thread_count) {
  if (!supported()) return;
  const Case c = kCases[4];
  at::manual_seed(11);
  const at::Tensor q = at::randn({c.B, c.H, c.T, c.D}), k = at::randn({c.B, c.Hkv, c.T, c.D}),
                   v = at::randn({c.B, c.Hkv, c.T, c.D}), dout = at::randn({c.B, c.H, c.T, c.D});
  const at::Tensor ws = AttentionMask::packed(packed_ids(c.B, c.T)).window_starts();
  const int saved = at::get_num_threads();
  at::set_num_threads(1);
  const Run one = run_kernel(q, k, v, dout, ws);
  at::set_num_threads(3);
  const Run three = run_kernel(q, k, v, dout, ws);
  at::set_num_threads(saved);
  BOOST_TEST(at::equal(one.out, three.out));
  BOOST_TEST(at::equal(one.dq, three.dq));
  BOOST_TEST(at::equal(one.dk, three.dk));
  BOOST_TEST(at::equal(one.dv, three.dv));
}

BOOST_AUTO_TEST_CASE(rejects_what_it_does_not_take) {
  if (!supported()) return;
  const at::Tensor q = at::randn({1, 4, 8, 16}), k = at::randn({1, 3, 8, 16});
  BOOST_CHECK_THROW(cpu_attention(q, k, k, at::Tensor()), Error);  // 4 heads on 3 kv heads
  const at::Tensor k2 = at::randn({1, 2, 8, 16});
  BOOST_CHECK_THROW(cpu_attention(q, k2, k2, at::full({1, 8}, 5, at::kLong)), Error);  // start > t
  BOOST_CHECK_THROW(cpu_attention(q.to(at::kHalf), k2.to(at::kHalf), k2.to(at::kHalf), at::Tensor()), Error);
  BOOST_TEST(!cpu_attention_supported(at::kFloat, at::kCPU, 72, 512));  // head_dim not a multiple of 16
  BOOST_TEST(!cpu_attention_supported(at::kFloat, at::kCPU, 64, 8192));
}

}  // namespace
}  // namespace dtune
