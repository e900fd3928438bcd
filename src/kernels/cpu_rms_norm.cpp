// The fused CPU RMSNorm (see cpu_rms_norm.h): AVX-512, rows on intra-op threads.
#include "dtune/kernels/cpu_rms_norm.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "dtune/core/error.h"

#if defined(__x86_64__)
#include "avx512_math.h"
#define DTUNE_RMS_X86 1
#endif

namespace dtune {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#if DTUNE_RMS_X86

using avx512::lanes;
using avx512::load16;
using avx512::store16;

// The value of x rounded to T (identity for fp32; bf16: round to nearest even, kept as fp32).
DTUNE_AVX512 inline __m512 round_to(__m512 x, const float*) { return x; }
DTUNE_AVX512 inline __m512 round_to(__m512 x, const uint16_t*) { return avx512::round_bf16(x); }

template <typename T>
DTUNE_AVX512 float sum_of_squares(const T* x, int64_t H) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t j = 0; j < H; j += 16) {
    const __m512 v = load16(x + j, lanes(j, H));
    acc = _mm512_fmadd_ps(v, v, acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// y = round(w * round(x * rstd)) per row, as HF: the normalised row is cast to the dtype first.
template <typename T>
DTUNE_AVX512 void forward_rows(const T* x, const T* w, T* y, float* rstd, int64_t H, float eps, int64_t begin,
                               int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const T* xr = x + i * H;
    const float r = 1.0f / std::sqrt(sum_of_squares(xr, H) / static_cast<float>(H) + eps);
    rstd[i] = r;
    const __m512 rv = _mm512_set1_ps(r);
    for (int64_t j = 0; j < H; j += 16) {
      const __mmask16 m = lanes(j, H);
      const __m512 xhat = round_to(_mm512_mul_ps(load16(xr + j, m), rv), x);
      store16(y + i * H + j, _mm512_mul_ps(load16(w + j, m), xhat), m);
    }
  }
}

// dx = rstd * (g - xhat * mean(g * xhat)), g = dy * w, xhat = x * rstd (all fp32).
template <typename T>
DTUNE_AVX512 void backward_rows(const T* x, const T* w, const T* dy, const float* rstd, T* dx, int64_t H,
                                int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const T* xr = x + i * H;
    const T* dyr = dy + i * H;
    const __m512 rv = _mm512_set1_ps(rstd[i]);
    __m512 dot = _mm512_setzero_ps();
    for (int64_t j = 0; j < H; j += 16) {
      const __mmask16 m = lanes(j, H);
      const __m512 g = _mm512_mul_ps(load16(dyr + j, m), load16(w + j, m));
      dot = _mm512_fmadd_ps(g, _mm512_mul_ps(load16(xr + j, m), rv), dot);
    }
    const __m512 mean = _mm512_set1_ps(_mm512_reduce_add_ps(dot) / static_cast<float>(H));
    for (int64_t j = 0; j < H; j += 16) {
      const __mmask16 m = lanes(j, H);
      const __m512 g = _mm512_mul_ps(load16(dyr + j, m), load16(w + j, m));
      const __m512 xhat = _mm512_mul_ps(load16(xr + j, m), rv);
      store16(dx + i * H + j, _mm512_mul_ps(rv, _mm512_fnmadd_ps(xhat, mean, g)), m);
    }
  }
}

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

template <typename T>
T* ptr(const at::Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

// Rows per task: about 64 KiB of input.
int64_t grain(int64_t H) { return std::max<int64_t>(1, 16384 / H); }

struct RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, double eps) {
    const int64_t H = x.size(-1), rows = x.numel() / H;
    at::Tensor y = at::empty_like(x);
    at::Tensor rstd = at::empty({rows}, x.options().dtype(at::kFloat));
    const bool bf16 = x.scalar_type() == at::kBFloat16;
    float* r = rstd.mutable_data_ptr<float>();
    at::parallel_for(0, rows, grain(H), [&](int64_t b, int64_t e) {
      if (bf16)
        forward_rows(ptr<uint16_t>(x), ptr<uint16_t>(weight), ptr<uint16_t>(y), r, H, static_cast<float>(eps), b, e);
      else
        forward_rows(ptr<float>(x), ptr<float>(weight), ptr<float>(y), r, H, static_cast<float>(eps), b, e);
    });
    ctx->save_for_backward({x, weight, rstd});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &rstd = saved[2];
    const at::Tensor dy = grad_outputs[0].to(x.scalar_type()).contiguous();
    const int64_t H = x.size(-1), rows = x.numel() / H;
    at::Tensor dx = at::empty_like(x);
    const bool bf16 = x.scalar_type() == at::kBFloat16;
    const float* r = rstd.const_data_ptr<float>();
    at::parallel_for(0, rows, grain(H), [&](int64_t b, int64_t e) {
      if (bf16)
        backward_rows(ptr<uint16_t>(x), ptr<uint16_t>(weight), ptr<uint16_t>(dy), r, ptr<uint16_t>(dx), H, b, e);
      else
        backward_rows(ptr<float>(x), ptr<float>(weight), ptr<float>(dy), r, ptr<float>(dx), H, b, e);
    });
    return {dx, at::Tensor(), at::Tensor()};
  }
};

#endif  // DTUNE_RMS_X86

}  // namespace

bool cpu_rms_norm_applies(const at::Tensor& x, const at::Tensor& weight) {
#if DTUNE_RMS_X86
  return cpu_has_avx512() && x.device().is_cpu() && weight.device().is_cpu() && x.dim() >= 1 &&
         weight.dim() == 1 && x.size(-1) == weight.size(0) && x.size(-1) > 0 && x.numel() > 0 &&
         x.scalar_type() == weight.scalar_type() &&
         (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) && x.is_contiguous() &&
         weight.is_contiguous() && !weight.requires_grad();
#else
  (void)x;
  (void)weight;
  return false;
#endif
}

at::Tensor cpu_rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  DTUNE_CHECK(cpu_rms_norm_applies(x, weight), "cpu_rms_norm: tensors it does not take (see cpu_rms_norm_applies)");
#if DTUNE_RMS_X86
  return RmsNormFunction::apply(x, weight, eps);
#else
  (void)eps;
  return at::Tensor();
#endif
}

}  // namespace dtune
