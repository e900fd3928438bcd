// The fused CPU attention kernels behind cpu_attention.h, on raw fp32 pointers: no libtorch
// types here, so the AVX-512 code stays inside cpu_attention_kernel.cpp (private to src/kernels).
//
// Algorithm (FlashAttention-2 on 64 x 64 blocks, fp32). Scores are computed transposed,
// S^T = K Q^T, so that the 16 lanes of a vector hold 16 queries: the softmax statistics of a
// query block are vectors, and K, V, Q and dO rows are read in place (no per-block packing; the
// caller supplies Q^T and dO^T once per call).
// - forward, one work item per (b, h, query block): online softmax over the key blocks the
//   window reaches, then O = acc / l and each query's logsumexp.
// - backward pass 1, one item per (b, kv head, key block): for every query head of the group and
//   every query block that sees the key block, recompute P from the logsumexp, accumulate dV and
//   dK, and keep the block pair's dS. Pass 2, one item per (b, h, query block):
//   dQ = sum_j dS_ij K_j. Every sum runs in a fixed order, so results do not depend on the
//   thread count.
#pragma once

#include <cstdint>

namespace dtune::cpu_attention_kernel {

inline constexpr int64_t kBlock = 64;  // query and key rows per block
inline constexpr int64_t kMaxHeadDim = 256;

// T rounded up to 16: the row length of the transposed inputs (zero beyond T).
inline int64_t padded_len(int64_t T) { return (T + 15) / 16 * 16; }

// A (B, heads, T, D) fp32 tensor: element (b, h, t, d) at data[b * sb + h * sh + t * st + d].
struct View {
  float* data = nullptr;
  int64_t sb = 0, sh = 0, st = 0;
};

struct Problem {
  int64_t B = 0, H = 0, Hkv = 0, T = 0, D = 0;  // H % Hkv == 0, D % 16 == 0, D <= kMaxHeadDim
  float scale = 1.0f;                           // softmax scale (1 / sqrt(D) by default)
  // (B, T): query t sees keys [window_starts[b * T + t], t]; null = [0, t] (plain causal).
  const int32_t* window_starts = nullptr;
  int threads = 1;
};

// True on x86-64 CPUs with AVX-512F; elsewhere the kernels must not be called.
bool cpu_supported();

// Floats of per-thread working space each call needs (the caller allocates threads x this).
int64_t thread_buffer_floats(const Problem& p);
// Floats of backward scratch: dS for every causal block pair, and block flags.
int64_t backward_scratch_floats(const Problem& p);

// xT (B, H, D, padded_len(T)) := mul * x transposed, zero beyond T, for x (B, H, T, D) with
// H = p.H (the layout forward and backward take for Q^T and dO^T).
void transpose_padded(const Problem& p, View x, float mul, float* xT);

// out (B, H, T) := rowsum(a * b) over D, for a and b (B, H, T, D) with H = p.H.
void row_dots(const Problem& p, View a, View b, float* out);

// qT: (B, H, D, padded_len(T)) contiguous, scale * q transposed, zero beyond T.
// out (B, H, T, D); lse (B, H, T) contiguous.
void forward(const Problem& p, const float* qT, View k, View v, View out, float* lse, float* thread_buffers);

// q, dout: (B, H, T, D) rows; doT: (B, H, D, padded_len(T)) dout transposed, zero beyond T;
// delta (B, H, T) = rowsum(dout * out). dq (B, H, T, D), dk and dv (B, Hkv, T, D).
void backward(const Problem& p, View q, const float* qT, View k, View v, View dout, const float* doT,
              const float* lse, const float* delta, View dq, View dk, View dv, float* scratch,
              float* thread_buffers);

}  // namespace dtune::cpu_attention_kernel
