// Few-row fp32 products on CPU: AVX2 dot products over weight rows, one block of rows per
// intra-op thread (see cpu_gemv.h).
#include "dtune/kernels/cpu_gemv.h"

#include <algorithm>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "dtune/core/error.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define DTUNE_CPU_GEMV_X86 1
#endif

namespace dtune {
namespace {

#if DTUNE_CPU_GEMV_X86

__attribute__((target("avx2,fma"))) float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// One output: dot(w_row, x_row) over in, 8 lanes then the scalar tail.
__attribute__((target("avx2,fma"))) float dot(const float* w, const float* x, int64_t in) {
  const int64_t vec_end = in / 8 * 8;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < vec_end; i += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), acc);
  float s = horizontal_sum(acc);
  for (int64_t i = vec_end; i < in; ++i) s += w[i] * x[i];
  return s;
}

// y[b, r] = dot(W[r], x[b]) (+ bias[r]) for weight rows r in [r_begin, r_end) and every x row b.
// Four weight rows at a time share each load of x (and are four independent FMA chains); the
// per-output arithmetic is exactly dot()'s, so results do not depend on how rows are split.
__attribute__((target("avx2,fma"))) void gemv_rows(const float* W, const float* x, const float* bias,
                                                   float* y, int64_t rows, int64_t in, int64_t out,
                                                   int64_t r_begin, int64_t r_end) {
  const int64_t vec_end = in / 8 * 8;
  int64_t r = r_begin;
  for (; r + 4 <= r_end; r += 4) {
    const float* w0 = W + r * in;
    const float* w1 = w0 + in;
    const float* w2 = w1 + in;
    const float* w3 = w2 + in;
    for (int64_t b = 0; b < rows; ++b) {
      const float* xb = x + b * in;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
      for (int64_t i = 0; i < vec_end; i += 8) {
        const __m256 xv = _mm256_loadu_ps(xb + i);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), xv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + i), xv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + i), xv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + i), xv, a3);
      }
      float s[4] = {horizontal_sum(a0), horizontal_sum(a1), horizontal_sum(a2), horizontal_sum(a3)};
      const float* wk[4] = {w0, w1, w2, w3};
      for (int k = 0; k < 4; ++k) {
        for (int64_t i = vec_end; i < in; ++i) s[k] += wk[k][i] * xb[i];
        y[b * out + r + k] = bias != nullptr ? s[k] + bias[r + k] : s[k];
      }
    }
  }
  for (; r < r_end; ++r) {
    for (int64_t b = 0; b < rows; ++b) {
      const float s = dot(W + r * in, x + b * in, in);
      y[b * out + r] = bias != nullptr ? s + bias[r] : s;
    }
  }
}

bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

#endif  // DTUNE_CPU_GEMV_X86

bool is_cpu_float(const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat; }

}  // namespace

bool cpu_gemv_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
#if DTUNE_CPU_GEMV_X86
  if (!cpu_has_avx2_fma()) return false;
  if (!is_cpu_float(x) || !is_cpu_float(w) || w.dim() != 2 || !w.is_contiguous() || x.dim() < 1) return false;
  if (x.requires_grad() || w.requires_grad()) return false;
  if (bias.defined() && (!is_cpu_float(bias) || bias.dim() != 1 || bias.size(0) != w.size(0) ||
                         bias.requires_grad()))
    return false;
  const int64_t in = w.size(1);
  if (in == 0 || x.size(-1) != in) return false;
  const int64_t rows = x.numel() / in;
  return rows >= 1 && rows <= kCpuGemvMaxRows;
#else
  (void)x;
  (void)w;
  (void)bias;
  return false;
#endif
}

at::Tensor cpu_gemv(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  DTUNE_CHECK(cpu_gemv_applies(x, w, bias), "cpu_gemv called on tensors it does not take");
#if DTUNE_CPU_GEMV_X86
  const int64_t in = w.size(1), out = w.size(0);
  const at::Tensor x2 = x.reshape({-1, in}).contiguous();
  const at::Tensor b = bias.defined() ? bias.contiguous() : at::Tensor();
  const int64_t rows = x2.size(0);
  at::Tensor y = at::empty({rows, out}, x.options());
  const float* W = w.const_data_ptr<float>();
  const float* xp = x2.const_data_ptr<float>();
  const float* bp = b.defined() ? b.const_data_ptr<float>() : nullptr;
  float* yp = y.mutable_data_ptr<float>();
  // One block of weight rows per thread, a multiple of 4 rows (blocks of different threads never
  // share a 4-row group), and at least ~64 KiB of weights: waking a thread for less costs more
  // than it saves (a 192 x 576 projection on a 64-core node uses 7 threads, not 48).
  const int64_t threads = at::get_num_threads();
  const int64_t min_rows = std::max<int64_t>(1, (int64_t{64} << 10) / (in * static_cast<int64_t>(sizeof(float))));
  const int64_t block = (std::max((out + threads - 1) / threads, min_rows) + 3) / 4 * 4;
  at::parallel_for(0, out, block, [&](int64_t begin, int64_t end) {
    gemv_rows(W, xp, bp, yp, rows, in, out, begin, end);
  });
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out;
  return y.view(shape);
#else
  return at::linear(x, w, bias);
#endif
}

}  // namespace dtune
