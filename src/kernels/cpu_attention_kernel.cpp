// Fused causal attention, forward and backward, with AVX-512 on x86-64 (see cpu_attention_kernel.h).
#include "cpu_attention_kernel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__x86_64__)
#include "avx512_math.h"
#define DTUNE_ATTN_X86 1
#endif

namespace dtune::cpu_attention_kernel {

#if DTUNE_ATTN_X86

namespace {

using avx512::exp512;

constexpr int64_t kB = kBlock;

// Built without OpenMP (no libgomp next to libtorch), the loops run on the calling thread.
int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }
int64_t num_blocks(int64_t T) { return (T + kB - 1) / kB; }
int64_t tri(int64_t qb) { return qb * (qb + 1) / 2; }  // index of block pair (qb, 0)

// --- the GEMM micro-kernel: C (M x N) (+)= A (M x K) B (K x N) ---
// A element (i, k) at A[i * rs + k * cs] (any layout: its scalars are broadcast); B row-major
// with leading dimension ldb; N a multiple of 16. Tiles of MR rows x 16*NV columns stay in
// registers (6 x 64: 24 accumulators + 4 B vectors of the 32 zmm).

template <int MR, int NV, bool ACC>
DTUNE_AVX512 void tile(int64_t K, const float* A, int64_t rs, int64_t cs, const float* B, int64_t ldb, float* C,
                       int64_t ldc) {
  __m512 c[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[r][v] = ACC ? _mm512_loadu_ps(C + r * ldc + 16 * v) : _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(B + k * ldb + 16 * v);
    const float* a = A + k * cs;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r * rs]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[r][v] = _mm512_fmadd_ps(ar, bv[v], c[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(C + r * ldc + 16 * v, c[r][v]);
}

using TileFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t);
constexpr int kMR = 6;

template <bool ACC, int MR>
constexpr TileFn tile_for(int nv) {
  return nv == 1 ? &tile<MR, 1, ACC> : nv == 2 ? &tile<MR, 2, ACC> : nv == 3 ? &tile<MR, 3, ACC> : &tile<MR, 4, ACC>;
}

template <bool ACC>
TileFn pick_tile(int mr, int nv) {
  switch (mr) {
    case 1: return tile_for<ACC, 1>(nv);
    case 2: return tile_for<ACC, 2>(nv);
    case 3: return tile_for<ACC, 3>(nv);
    case 4: return tile_for<ACC, 4>(nv);
    case 5: return tile_for<ACC, 5>(nv);
    default: return tile_for<ACC, 6>(nv);
  }
}

template <bool ACC>
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t rs, int64_t cs, const float* B, int64_t ldb,
          float* C, int64_t ldc) {
  for (int64_t n0 = 0; n0 < N; n0 += 64) {
    const int nv = static_cast<int>(std::min<int64_t>(4, (N - n0) / 16));
    const TileFn full = pick_tile<ACC>(kMR, nv);
    int64_t m0 = 0;
    for (; m0 + kMR <= M; m0 += kMR) full(K, A + m0 * rs, rs, cs, B + n0, ldb, C + m0 * ldc + n0, ldc);
    if (m0 < M)
      pick_tile<ACC>(static_cast<int>(M - m0), nv)(K, A + m0 * rs, rs, cs, B + n0, ldb, C + m0 * ldc + n0, ldc);
  }
}

// --- vector helpers ---

DTUNE_AVX512 inline __m512i iota16() {
  return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

// Lanes idx0 + [0, 16) that are < n.
DTUNE_AVX512 inline __mmask16 tail_mask(int64_t idx0, int64_t n) {
  const int64_t left = n - idx0;
  return left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}

struct Ctx {
  const Problem& p;
  int64_t group;  // query heads per kv head
  int64_t nb;     // blocks along T
  int32_t window(int64_t b, int64_t t) const {
    return p.window_starts != nullptr ? p.window_starts[b * p.T + t] : 0;
  }
  // Smallest window start among the queries of block qb: keys before it are never seen.
  int64_t min_window(int64_t b, int64_t qb) const {
    if (p.window_starts == nullptr) return 0;
    const int64_t q0 = qb * kB, q1 = std::min(p.T, q0 + kB);
    int32_t lo = p.window_starts[b * p.T + q0];
    for (int64_t t = q0 + 1; t < q1; ++t) lo = std::min(lo, p.window_starts[b * p.T + t]);
    return lo;
  }
};

// --- forward: one (b, h, query block) ---

DTUNE_AVX512 void forward_block(const Ctx& c, const float* qT, const View& k, const View& v, const View& out,
                                float* lse, int64_t b, int64_t h, int64_t qb, float* buf) {
  const Problem& p = c.p;
  const int64_t D = p.D, hk = h / c.group, Tp = padded_len(p.T);
  const int64_t q0 = qb * kB, qn = std::min(kB, p.T - q0), qN = round16(qn), nv = qN / 16;
  const float* qt = qT + (b * p.H + h) * D * Tp + q0;  // (D, qN), ld Tp
  float* St = buf;                 // (kn, qN): scores S^T, then probabilities P^T
  float* acc = St + kB * kB;       // (qn, D)
  float* m = acc + kB * D;         // (qN) running max per query
  float* l = m + kB;               // (qN) running sum
  float* alpha = l + kB;           // (qN) rescale factor of this block
  std::fill(acc, acc + qn * D, 0.0f);
  std::fill(m, m + qN, kNegInf);
  std::fill(l, l + qN, 0.0f);
  int32_t max_lo = 0;
  for (int64_t i = 0; i < qn; ++i) max_lo = std::max(max_lo, c.window(b, q0 + i));
  __m512i lo[4], qidx[4];
  for (int64_t j = 0; j < nv; ++j) {
    qidx[j] = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(q0 + 16 * j)), iota16());
    lo[j] = p.window_starts != nullptr
                ? _mm512_maskz_loadu_epi32(tail_mask(q0 + 16 * j, p.T), p.window_starts + b * p.T + q0 + 16 * j)
                : _mm512_setzero_si512();
  }
  const int64_t kb_first = c.min_window(b, qb) / kB;
  for (int64_t kb = kb_first; kb <= qb; ++kb) {
    const int64_t k0 = kb * kB, kn = std::min(kB, p.T - k0);
    const float* kr = k.data + b * k.sb + hk * k.sh + k0 * k.st;
    const float* vr = v.data + b * v.sb + hk * v.sh + k0 * v.st;
    gemm<false>(kn, qN, D, kr, k.st, 1, qt, Tp, St, kB);
    // Masks are needed on the diagonal block and where a window starts inside the block.
    // Lanes at or beyond T are never read back (the PV product takes qn queries).
    const bool masked = k0 + kn - 1 > q0 || max_lo > k0;
    for (int64_t j = 0; j < nv; ++j) {
      __m512 mx = _mm512_set1_ps(kNegInf);
      for (int64_t r = 0; r < kn; ++r) {
        float* s = St + r * kB + 16 * j;
        __m512 sv = _mm512_loadu_ps(s);
        if (masked) {
          const __m512i key = _mm512_set1_epi32(static_cast<int32_t>(k0 + r));
          const __mmask16 ok = _mm512_cmpge_epi32_mask(qidx[j], key) & _mm512_cmple_epi32_mask(lo[j], key);
          sv = _mm512_mask_blend_ps(ok, _mm512_set1_ps(kNegInf), sv);
          _mm512_storeu_ps(s, sv);
        }
        mx = _mm512_max_ps(mx, sv);
      }
      const __m512 m_old = _mm512_loadu_ps(m + 16 * j);
      const __m512 m_new = _mm512_max_ps(m_old, mx);
      const __mmask16 seen_before = _mm512_cmp_ps_mask(m_old, _mm512_set1_ps(kNegInf), _CMP_NEQ_OQ);
      const __mmask16 seen_now = _mm512_cmp_ps_mask(m_new, _mm512_set1_ps(kNegInf), _CMP_NEQ_OQ);
      // alpha = exp(m_old - m_new), 0 for a query that saw no key before this block.
      _mm512_storeu_ps(alpha + 16 * j, _mm512_maskz_mov_ps(seen_before, exp512(_mm512_sub_ps(m_old, m_new))));
      _mm512_storeu_ps(m + 16 * j, m_new);
      const __m512 shift = _mm512_maskz_mov_ps(seen_now, m_new);  // 0 where nothing is seen yet
      __m512 sum = _mm512_setzero_ps();
      for (int64_t r = 0; r < kn; ++r) {
        float* s = St + r * kB + 16 * j;
        const __m512 sv = _mm512_loadu_ps(s);
        __m512 pv = exp512(_mm512_sub_ps(sv, shift));
        if (masked) pv = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(sv, _mm512_set1_ps(kNegInf), _CMP_NEQ_OQ), pv);
        _mm512_storeu_ps(s, pv);
        sum = _mm512_add_ps(sum, pv);
      }
      const __m512 lv = _mm512_loadu_ps(l + 16 * j);
      _mm512_storeu_ps(l + 16 * j, _mm512_fmadd_ps(lv, _mm512_loadu_ps(alpha + 16 * j), sum));
    }
    for (int64_t i = 0; i < qn; ++i) {
      if (alpha[i] == 1.0f) continue;
      float* a = acc + i * D;
      const __m512 av = _mm512_set1_ps(alpha[i]);
      for (int64_t d = 0; d < D; d += 16) _mm512_storeu_ps(a + d, _mm512_mul_ps(_mm512_loadu_ps(a + d), av));
    }
    // acc (qn, D) += P (qn, kn) V: P(i, r) = St[r][i].
    gemm<true>(qn, D, kn, St, 1, kB, vr, v.st, acc, D);
  }
  for (int64_t i = 0; i < qn; ++i) {
    const float inv = 1.0f / l[i];
    float* o = out.data + b * out.sb + h * out.sh + (q0 + i) * out.st;
    for (int64_t d = 0; d < D; ++d) o[d] = acc[i * D + d] * inv;
    lse[(b * p.H + h) * p.T + q0 + i] = m[i] + std::log(l[i]);
  }
}

// --- backward ---

struct Scratch {
  float* flags;  // (B, H, tri(nb)): 1 where pass 1 wrote the block pair's dS
  float* ds;     // (B, H, tri(nb), kB, kB): dS^T of block pair (qb, kb), rows = keys
};

Scratch scratch_layout(const Ctx& c, float* base) {
  Scratch s;
  s.flags = base;
  s.ds = s.flags + c.p.B * c.p.H * tri(c.nb);
  return s;
}

void store_rows(const View& x, int64_t b, int64_t h, int64_t t0, int64_t n, int64_t D, const float* src, float mul) {
  for (int64_t i = 0; i < n; ++i) {
    float* o = x.data + b * x.sb + h * x.sh + (t0 + i) * x.st;
    for (int64_t d = 0; d < D; ++d) o[d] = mul * src[i * D + d];
  }
}

struct BackwardArgs {
  View q, k, v, dout, dq, dk, dv;
  const float *qT, *doT, *lse, *delta;
};

// Pass 1: key block kb of kv head hk -> dK, dV; dS^T of every block pair it takes part in.
DTUNE_AVX512 void backward_kv_block(const Ctx& c, const BackwardArgs& a, const Scratch& sc, int64_t b, int64_t hk,
                                    int64_t kb, float* buf) {
  const Problem& p = c.p;
  const int64_t D = p.D, Tp = padded_len(p.T);
  const int64_t k0 = kb * kB, kn = std::min(kB, p.T - k0), k_last = k0 + kn - 1;
  const float* kr = a.k.data + b * a.k.sb + hk * a.k.sh + k0 * a.k.st;
  const float* vr = a.v.data + b * a.v.sb + hk * a.v.sh + k0 * a.v.st;
  float* Pt = buf;              // (kn, qN)
  float* dPt = Pt + kB * kB;    // (kn, qN)
  float* dK = dPt + kB * kB;    // (kn, D)
  float* dV = dK + kB * D;      // (kn, D)
  std::fill(dK, dK + kn * D, 0.0f);
  std::fill(dV, dV + kn * D, 0.0f);
  for (int64_t g = 0; g < c.group; ++g) {
    const int64_t h = hk * c.group + g;
    const float* lse_h = a.lse + (b * p.H + h) * p.T;
    const float* delta_h = a.delta + (b * p.H + h) * p.T;
    for (int64_t qb = kb; qb < c.nb; ++qb) {
      if (c.min_window(b, qb) > k_last) continue;  // no query of the block sees these keys
      const int64_t q0 = qb * kB, qn = std::min(kB, p.T - q0), qN = round16(qn);
      const float* qt = a.qT + (b * p.H + h) * D * Tp + q0;
      const float* dot = a.doT + (b * p.H + h) * D * Tp + q0;
      gemm<false>(kn, qN, D, kr, a.k.st, 1, qt, Tp, Pt, kB);    // S^T = K (scale Q)^T
      gemm<false>(kn, qN, D, vr, a.v.st, 1, dot, Tp, dPt, kB);  // dP^T = V dO^T
      float* ds = sc.ds + ((b * p.H + h) * tri(c.nb) + tri(qb) + kb) * kB * kB;
      for (int64_t j = 0; j < qN; j += 16) {
        const __mmask16 in_range = tail_mask(q0 + j, p.T);
        const __m512i qidx = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(q0 + j)), iota16());
        const __m512i lo = p.window_starts != nullptr
                               ? _mm512_maskz_loadu_epi32(in_range, p.window_starts + b * p.T + q0 + j)
                               : _mm512_setzero_si512();
        const __m512 l = _mm512_maskz_loadu_ps(in_range, lse_h + q0 + j);
        const __m512 dl = _mm512_maskz_loadu_ps(in_range, delta_h + q0 + j);
        for (int64_t r = 0; r < kn; ++r) {
          const __m512i key = _mm512_set1_epi32(static_cast<int32_t>(k0 + r));
          const __mmask16 ok =
              in_range & _mm512_cmpge_epi32_mask(qidx, key) & _mm512_cmple_epi32_mask(lo, key);
          const __m512 pv = _mm512_maskz_mov_ps(ok, exp512(_mm512_sub_ps(_mm512_loadu_ps(Pt + r * kB + j), l)));
          _mm512_storeu_ps(Pt + r * kB + j, pv);
          _mm512_storeu_ps(ds + r * kB + j, _mm512_mul_ps(pv, _mm512_sub_ps(_mm512_loadu_ps(dPt + r * kB + j), dl)));
        }
      }
      const float* dor = a.dout.data + b * a.dout.sb + h * a.dout.sh + q0 * a.dout.st;
      const float* qr = a.q.data + b * a.q.sb + h * a.q.sh + q0 * a.q.st;
      gemm<true>(kn, D, qn, Pt, kB, 1, dor, a.dout.st, dV, D);  // dV += P^T dO
      gemm<true>(kn, D, qn, ds, kB, 1, qr, a.q.st, dK, D);      // dK += dS^T Q (scale on store)
      sc.flags[(b * p.H + h) * tri(c.nb) + tri(qb) + kb] = 1.0f;
    }
  }
  store_rows(a.dk, b, hk, k0, kn, D, dK, p.scale);
  store_rows(a.dv, b, hk, k0, kn, D, dV, 1.0f);
}

// Pass 2: query block qb of head h -> dQ = scale * sum_kb dS_(qb,kb) K_kb.
void backward_q_block(const Ctx& c, const BackwardArgs& a, const Scratch& sc, int64_t b, int64_t h, int64_t qb,
                      float* buf) {
  const Problem& p = c.p;
  const int64_t D = p.D, hk = h / c.group;
  const int64_t q0 = qb * kB, qn = std::min(kB, p.T - q0);
  float* dQ = buf;  // (qn, D)
  std::fill(dQ, dQ + qn * D, 0.0f);
  for (int64_t kb = 0; kb <= qb; ++kb) {
    const int64_t pair = (b * p.H + h) * tri(c.nb) + tri(qb) + kb;
    if (sc.flags[pair] == 0.0f) continue;
    const int64_t k0 = kb * kB, kn = std::min(kB, p.T - k0);
    const float* kr = a.k.data + b * a.k.sb + hk * a.k.sh + k0 * a.k.st;
    // A(i, r) = dS(query i, key r) = dS^T[r][i]: row stride 1, column stride kB.
    gemm<true>(qn, D, kn, sc.ds + pair * kB * kB, 1, kB, kr, a.k.st, dQ, D);
  }
  store_rows(a.dq, b, h, q0, qn, D, dQ, p.scale);
}

}  // namespace

bool cpu_supported() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

int64_t thread_buffer_floats(const Problem& p) { return 2 * kB * kB + 2 * kB * p.D + 3 * kB + 16; }

int64_t backward_scratch_floats(const Problem& p) {
  const int64_t pairs = p.B * p.H * tri(num_blocks(p.T));
  return pairs + pairs * kB * kB;
}

void transpose_padded(const Problem& p, View x, float mul, float* xT) {
  const int64_t Tp = padded_len(p.T), D = p.D;
#pragma omp parallel for schedule(static) num_threads(p.threads)
  for (int64_t bh = 0; bh < p.B * p.H; ++bh) {
    const int64_t b = bh / p.H, h = bh % p.H;
    float* dst = xT + bh * D * Tp;
    // Blocks of 16 rows, so each write run of 16 floats fills one cache line.
    for (int64_t t0 = 0; t0 < p.T; t0 += 16) {
      const int64_t n = std::min<int64_t>(16, p.T - t0);
      for (int64_t i = 0; i < n; ++i) {
        const float* src = x.data + b * x.sb + h * x.sh + (t0 + i) * x.st;
        for (int64_t d = 0; d < D; ++d) dst[d * Tp + t0 + i] = mul * src[d];
      }
    }
    for (int64_t d = 0; d < D; ++d)
      for (int64_t t = p.T; t < Tp; ++t) dst[d * Tp + t] = 0.0f;
  }
}

void row_dots(const Problem& p, View a, View b, float* out) {
#pragma omp parallel for schedule(static) num_threads(p.threads)
  for (int64_t bh = 0; bh < p.B * p.H; ++bh) {
    const int64_t bb = bh / p.H, h = bh % p.H;
    for (int64_t t = 0; t < p.T; ++t) {
      const float* x = a.data + bb * a.sb + h * a.sh + t * a.st;
      const float* y = b.data + bb * b.sb + h * b.sh + t * b.st;
      float s = 0.0f;
      for (int64_t d = 0; d < p.D; ++d) s += x[d] * y[d];
      out[bh * p.T + t] = s;
    }
  }
}

void forward(const Problem& p, const float* qT, View k, View v, View out, float* lse, float* thread_buffers) {
  const Ctx c{p, p.H / p.Hkv, num_blocks(p.T)};
  const int64_t bh = p.B * p.H, items = bh * c.nb, per_thread = thread_buffer_floats(p);
#pragma omp parallel num_threads(p.threads)
  {
    float* buf = thread_buffers + thread_index() * per_thread;
    // Longest items (last query blocks: the most keys) first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < items; ++i) {
      const int64_t qb = c.nb - 1 - i / bh, r = i % bh;
      forward_block(c, qT, k, v, out, lse, r / p.H, r % p.H, qb, buf);
    }
  }
}

void backward(const Problem& p, View q, const float* qT, View k, View v, View dout, const float* doT,
              const float* lse, const float* delta, View dq, View dk, View dv, float* scratch,
              float* thread_buffers) {
  const Ctx c{p, p.H / p.Hkv, num_blocks(p.T)};
  const Scratch sc = scratch_layout(c, scratch);
  const BackwardArgs a{q, k, v, dout, dq, dk, dv, qT, doT, lse, delta};
  const int64_t bh = p.B * p.H, bhk = p.B * p.Hkv, per_thread = thread_buffer_floats(p);
  std::fill(sc.flags, sc.flags + bh * tri(c.nb), 0.0f);
#pragma omp parallel num_threads(p.threads)
  {
    float* buf = thread_buffers + thread_index() * per_thread;
    // Pass 1, first key blocks (seen by the most queries) first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < bhk * c.nb; ++i) {
      const int64_t kb = i / bhk, r = i % bhk;
      backward_kv_block(c, a, sc, r / p.Hkv, r % p.Hkv, kb, buf);
    }
    // (implicit barrier) Pass 2, last query blocks (the most key blocks) first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < bh * c.nb; ++i) {
      const int64_t qb = c.nb - 1 - i / bh, r = i % bh;
      backward_q_block(c, a, sc, r / p.H, r % p.H, qb, buf);
    }
  }
}

#else  // not x86-64: never selected (cpu_supported() is false)

bool cpu_supported() { return false; }
int64_t thread_buffer_floats(const Problem&) { return 0; }
int64_t backward_scratch_floats(const Problem&) { return 0; }
void transpose_padded(const Problem&, View, float, float*) {}
void row_dots(const Problem&, View, View, float*) {}
void forward(const Problem&, const float*, View, View, View, float*, float*) {}
void backward(const Problem&, View, const float*, View, View, View, const float*, const float*, const float*, View,
              View, View, float*, float*) {}

#endif

}  // namespace dtune::cpu_attention_kernel
