// AVX-512 helpers shared by dtune's fused CPU kernels (x86-64 only; private to src/model).
// Functions carry target("avx512f"), so a file that includes this needs no -mavx512f and its
// other code keeps the baseline ISA; call them only where the CPU has AVX-512F.
#pragma once

#if !defined(__x86_64__)
#error "avx512_math.h is for x86-64 builds only"
#endif

// GCC 12's AVX-512 headers start unmasked intrinsics from `__m512 __Y = __Y;`, which
// -W(maybe-)uninitialized reports once inlined (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#define DTUNE_AVX512 __attribute__((target("avx512f")))

namespace dtune::avx512 {

// exp(x) for x <= 88, fp32 to ~1 ulp: x = n ln2 + r with |r| <= ln2 / 2, degree-7 Taylor
// polynomial for exp(r) (truncation < 6e-9 relative), then scalef by 2^n. x below -88 gives
// ~6e-39 or less; callers zero masked entries explicitly.
DTUNE_AVX512 inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace dtune::avx512
