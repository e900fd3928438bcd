// The fused CPU rotary embedding (see cpu_rotary.h): AVX-512, (b, t) rows on intra-op threads.
#include "dtune/kernels/cpu_rotary.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "dtune/core/error.h"

#if defined(__x86_64__)
#include "avx512_math.h"
#define DTUNE_ROTARY_X86 1
#endif

namespace dtune {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#if DTUNE_ROTARY_X86

using avx512::load16;
using avx512::store16;

// (B, n, T, D) element strides; the last dim is contiguous.
struct Layout {
  int64_t B, n, T, D, sb, sh, st;
};

Layout layout_of(const at::Tensor& x) {
  return {x.size(0), x.size(1), x.size(2), x.size(3), x.stride(0), x.stride(1), x.stride(2)};
}

// Forward (h = D/2): y[i] = x[i] c[i] - x[i+h] s[i], y[i+h] = x[i+h] c[i+h] + x[i] s[i+h].
// Backward, its transpose with x = dy: dx[i] = dy[i] c[i] + dy[i+h] s[i+h],
// dx[i+h] = dy[i+h] c[i+h] - dy[i] s[i].
template <typename T>
DTUNE_AVX512 void rotate_rows(const T* x, const Layout& xl, const T* cos, const T* sin, T* y, const Layout& yl,
                              bool backward, int64_t begin, int64_t end) {
  const int64_t D = xl.D, half = D / 2;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t b = r / xl.T, t = r % xl.T;
    const T* c = cos + r * D;
    const T* s = sin + r * D;
    for (int64_t h = 0; h < xl.n; ++h) {
      const T* xr = x + b * xl.sb + h * xl.sh + t * xl.st;
      T* yr = y + b * yl.sb + h * yl.sh + t * yl.st;
      for (int64_t i = 0; i < half; i += 16) {
        const __m512 x1 = load16(xr + i, 0xffff), x2 = load16(xr + half + i, 0xffff);
        const __m512 c1 = load16(c + i, 0xffff), c2 = load16(c + half + i, 0xffff);
        const __m512 s1 = load16(s + i, 0xffff), s2 = load16(s + half + i, 0xffff);
        if (!backward) {
          store16(yr + i, _mm512_fnmadd_ps(x2, s1, _mm512_mul_ps(x1, c1)), 0xffff);
          store16(yr + half + i, _mm512_fmadd_ps(x1, s2, _mm512_mul_ps(x2, c2)), 0xffff);
        } else {  // x is dy here
          store16(yr + i, _mm512_fmadd_ps(x2, s2, _mm512_mul_ps(x1, c1)), 0xffff);
          store16(yr + half + i, _mm512_fnmadd_ps(x1, s1, _mm512_mul_ps(x2, c2)), 0xffff);
        }
      }
    }
  }
}

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

// (B, n, T, D) laid out as (B, T, n, D).
at::Tensor empty_btnd(const at::Tensor& like) {
  return at::empty({like.size(0), like.size(2), like.size(1), like.size(3)}, like.options()).transpose(1, 2);
}

at::Tensor run(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool backward) {
  at::Tensor y = empty_btnd(x);
  const Layout xl = layout_of(x), yl = layout_of(y);
  const bool bf16 = x.scalar_type() == at::kBFloat16;
  const int64_t grain = std::max<int64_t>(1, 16384 / (xl.n * xl.D));
  at::parallel_for(0, xl.B * xl.T, grain, [&](int64_t b, int64_t e) {
    if (bf16)
      rotate_rows(static_cast<const uint16_t*>(x.const_data_ptr()), xl, static_cast<const uint16_t*>(cos.const_data_ptr()),
                  static_cast<const uint16_t*>(sin.const_data_ptr()), static_cast<uint16_t*>(y.data_ptr()), yl,
                  backward, b, e);
    else
      rotate_rows(x.const_data_ptr<float>(), xl, cos.const_data_ptr<float>(), sin.const_data_ptr<float>(),
                  y.mutable_data_ptr<float>(), yl, backward, b, e);
  });
  return y;
}

struct RotaryFunction : public torch::autograd::Function<RotaryFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return run(x, cos, sin, /*backward=*/false);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& cos = saved[0];
    at::Tensor dy = grad_outputs[0].to(cos.scalar_type());
    if (dy.stride(3) != 1) dy = dy.contiguous();
    return {run(dy, cos, saved[1], /*backward=*/true), at::Tensor(), at::Tensor()};
  }
};

#endif  // DTUNE_ROTARY_X86

}  // namespace

bool cpu_rotary_applies(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
#if DTUNE_ROTARY_X86
  if (!cpu_has_avx512() || x.dim() != 4 || cos.dim() != 3 || !x.device().is_cpu()) return false;
  const int64_t B = x.size(0), T = x.size(2), D = x.size(3);
  const at::ScalarType dt = x.scalar_type();
  return (dt == at::kFloat || dt == at::kBFloat16) && D > 0 && D % 32 == 0 && x.stride(3) == 1 &&
         cos.sizes() == at::IntArrayRef({B, T, D}) && sin.sizes() == cos.sizes() && cos.scalar_type() == dt &&
         sin.scalar_type() == dt && cos.device().is_cpu() && sin.device().is_cpu() && cos.is_contiguous() &&
         sin.is_contiguous() && !cos.requires_grad() && !sin.requires_grad();
#else
  (void)x;
  (void)cos;
  (void)sin;
  return false;
#endif
}

at::Tensor cpu_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  DTUNE_CHECK(cpu_rotary_applies(x, cos, sin), "cpu_rotary: tensors it does not take (see cpu_rotary_applies)");
#if DTUNE_ROTARY_X86
  return RotaryFunction::apply(x, cos, sin);
#else
  return at::Tensor();
#endif
}

}  // namespace dtune
