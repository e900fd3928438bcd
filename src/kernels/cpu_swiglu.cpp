// The fused CPU SwiGLU gate (see cpu_swiglu.h): AVX-512 elementwise passes on intra-op threads.
#include "dtune/kernels/cpu_swiglu.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "dtune/core/error.h"

#if defined(__x86_64__)
#include "avx512_math.h"
#define DTUNE_SWIGLU_X86 1
#endif

namespace dtune {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kGrain = 16384;  // elements per task

#if DTUNE_SWIGLU_X86

using avx512::exp512;
using avx512::lanes;
using avx512::load16;
using avx512::store16;

// sigmoid(g) = 1 / (1 + exp(-g)); exp overflows to inf for g < -88, giving 0.
DTUNE_AVX512 inline __m512 sigmoid16(__m512 g) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}

template <typename T>
DTUNE_AVX512 void forward_range(const T* g, const T* u, T* y, int64_t begin, int64_t end) {
  for (int64_t j = begin; j < end; j += 16) {
    const __mmask16 m = lanes(j, end);
    const __m512 gv = load16(g + j, m);
    store16(y + j, _mm512_mul_ps(_mm512_mul_ps(gv, sigmoid16(gv)), load16(u + j, m)), m);
  }
}

// dg = dy * u * s * (1 + g * (1 - s)), du = dy * g * s, with s = sigmoid(g).
template <typename T>
DTUNE_AVX512 void backward_range(const T* g, const T* u, const T* dy, T* dg, T* du, int64_t begin, int64_t end) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t j = begin; j < end; j += 16) {
    const __mmask16 m = lanes(j, end);
    const __m512 gv = load16(g + j, m), uv = load16(u + j, m), dyv = load16(dy + j, m);
    const __m512 s = sigmoid16(gv);
    const __m512 silu = _mm512_mul_ps(gv, s);
    store16(du + j, _mm512_mul_ps(dyv, silu), m);
    const __m512 dsilu = _mm512_mul_ps(s, _mm512_fmadd_ps(gv, _mm512_sub_ps(one, s), one));
    store16(dg + j, _mm512_mul_ps(_mm512_mul_ps(dyv, uv), dsilu), m);
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

struct SwigluFunction : public torch::autograd::Function<SwigluFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    at::Tensor y = at::empty_like(gate);
    const bool bf16 = gate.scalar_type() == at::kBFloat16;
    at::parallel_for(0, gate.numel(), kGrain, [&](int64_t b, int64_t e) {
      if (bf16)
        forward_range(ptr<uint16_t>(gate), ptr<uint16_t>(up), ptr<uint16_t>(y), b, e);
      else
        forward_range(ptr<float>(gate), ptr<float>(up), ptr<float>(y), b, e);
    });
    ctx->save_for_backward({gate, up});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1];
    const at::Tensor dy = grad_outputs[0].to(gate.scalar_type()).contiguous();
    at::Tensor dg = at::empty_like(gate), du = at::empty_like(up);
    const bool bf16 = gate.scalar_type() == at::kBFloat16;
    at::parallel_for(0, gate.numel(), kGrain, [&](int64_t b, int64_t e) {
      if (bf16)
        backward_range(ptr<uint16_t>(gate), ptr<uint16_t>(up), ptr<uint16_t>(dy), ptr<uint16_t>(dg),
                       ptr<uint16_t>(du), b, e);
      else
        backward_range(ptr<float>(gate), ptr<float>(up), ptr<float>(dy), ptr<float>(dg), ptr<float>(du), b, e);
    });
    return {dg, du};
  }
};

#endif  // DTUNE_SWIGLU_X86

}  // namespace

bool cpu_swiglu_applies(const at::Tensor& gate, const at::Tensor& up) {
#if DTUNE_SWIGLU_X86
  return cpu_has_avx512() && gate.device().is_cpu() && up.device().is_cpu() && gate.sizes() == up.sizes() &&
         gate.scalar_type() == up.scalar_type() &&
         (gate.scalar_type() == at::kFloat || gate.scalar_type() == at::kBFloat16) && gate.is_contiguous() &&
         up.is_contiguous();
#else
  (void)gate;
  (void)up;
  return false;
#endif
}

at::Tensor cpu_swiglu(const at::Tensor& gate, const at::Tensor& up) {
  DTUNE_CHECK(cpu_swiglu_applies(gate, up), "cpu_swiglu: tensors it does not take (see cpu_swiglu_applies)");
#if DTUNE_SWIGLU_X86
  return SwigluFunction::apply(gate, up);
#else
  return at::Tensor();
#endif
}

}  // namespace dtune
