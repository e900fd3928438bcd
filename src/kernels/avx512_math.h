// AVX-512 helpers shared by dtune's fused CPU kernels (x86-64 only; private to src/kernels).
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

#include <cstdint>

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

// The lanes of a 16-wide step at j that lie below n.
DTUNE_AVX512 inline __mmask16 lanes(int64_t j, int64_t n) {
  const int64_t left = n - j;
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}

// 16 values as fp32 (lanes outside m read as 0): fp32 loads, or bf16 widened (its bits are the
// upper half of an fp32). bf16 tails go through a small buffer: masked 16-bit loads and stores
// would need AVX-512BW.
DTUNE_AVX512 inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
DTUNE_AVX512 inline __m512 load16(const uint16_t* p, __mmask16 m) {
  __m256i half;
  if (m == 0xffff) {
    half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  } else {
    alignas(32) uint16_t tail[16] = {};
    for (int i = 0; i < 16 && ((m >> i) & 1); ++i) tail[i] = p[i];
    half = _mm256_load_si256(reinterpret_cast<const __m256i*>(tail));
  }
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}
DTUNE_AVX512 inline void store16(float* p, __m512 v, __mmask16 m) { _mm512_mask_storeu_ps(p, m, v); }
// v rounded to bf16 (nearest even; finite values, NaN is not preserved), kept as fp32: the low
// 16 bits are zero, the high 16 are the bf16 value.
DTUNE_AVX512 inline __m512 round_bf16(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  return _mm512_castsi512_ps(_mm512_and_si512(rounded, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}
DTUNE_AVX512 inline void store16(uint16_t* p, __m512 v, __mmask16 m) {
  const __m256i half = _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(round_bf16(v)), 16));
  if (m == 0xffff) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), half);
  } else {
    alignas(32) uint16_t tail[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(tail), half);
    for (int i = 0; i < 16 && ((m >> i) & 1); ++i) p[i] = tail[i];
  }
}

}  // namespace dtune::avx512
