// Rotary position embedding: inverse frequencies (default / llama3 scaling) exactly as HF
// computes them in fp32, cos/sin per position, and the rotate-half application.
#include "dtune/model/rope.h"

#include <cmath>

#include <ATen/ATen.h>

#include "dtune/core/error.h"
#include "dtune/io/model_config.h"
#include "dtune/kernels/cpu_rotary.h"
#include "dtune/kernels/kernel_choice.h"

namespace dtune {
namespace {

// HF _compute_default_rope_parameters: 1 / base^(arange(0, dim, 2) / dim) in fp32.
at::Tensor default_inv_freq(int64_t dim, double base) {
  const at::Tensor exponent = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  return at::reciprocal(at::pow(base, exponent));
}

// HF _compute_llama3_parameters, op for op in fp32.
at::Tensor llama3_inv_freq(const at::Tensor& inv_freq, const RopeScaling& s) {
  const double old_len = static_cast<double>(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_len / s.low_freq_factor;
  const double high_freq_wavelen = old_len / s.high_freq_factor;
  // python's scalar / tensor is tensor.reciprocal() * scalar; kept for bitwise equality.
  const at::Tensor wavelen = at::reciprocal(inv_freq) * (2 * M_PI);
  at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
  const at::Tensor smooth =
      (at::reciprocal(wavelen) * old_len - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  const at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  const at::Tensor medium = (wavelen < high_freq_wavelen).logical_not() &
                            (wavelen > low_freq_wavelen).logical_not();
  return at::where(medium, smoothed, scaled);
}

}  // namespace

RotaryEmbedding::RotaryEmbedding(const ModelConfig& config, c10::Device device) {
  const int64_t dim = config.head_dim;
  DTUNE_CHECK(dim > 0 && dim % 2 == 0, "rope: head_dim must be even and > 0, got ", dim);
  at::Tensor inv = default_inv_freq(dim, config.rope_theta);
  const std::string& type = config.rope_scaling.type;
  if (type == "llama3") {
    inv = llama3_inv_freq(inv, config.rope_scaling);
  } else {
    DTUNE_CHECK(type == "default" || type.empty(), "rope_scaling type '", type,
                "' is not supported; dtune implements 'default' and 'llama3'");
  }
  inv_freq_ = inv.to(device);
}

std::pair<at::Tensor, at::Tensor> RotaryEmbedding::cos_sin(const at::Tensor& position_ids,
                                                           c10::ScalarType dtype) const {
  DTUNE_CHECK(position_ids.dim() == 2, "position_ids must be (B, T)");
  // As HF, per call: freqs = inv_freq @ positions in fp32 (one rounding per product), then
  // cos/sin of cat(freqs, freqs) times the attention scaling, cast to the activation dtype.
  // Computed where the positions are, with no table: no bound to check, hence no read of the
  // largest position back to the host (a device synchronisation on GPUs).
  const at::Tensor pos = position_ids.to(inv_freq_.device()).to(at::kFloat).unsqueeze(-1);  // (B, T, 1)
  const at::Tensor freqs = pos * inv_freq_;                                              // (B, T, dim/2)
  const at::Tensor emb = at::cat({freqs, freqs}, -1);                                    // (B, T, dim)
  return {(emb.cos() * attention_scaling_).to(dtype), (emb.sin() * attention_scaling_).to(dtype)};
}

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, KernelPolicy kernels) {
  if (use_cpu_rotary(kernels, x, cos, sin)) return cpu_rotary(x, cos, sin);  // one fused pass on CPU
  const int64_t half = x.size(-1) / 2;
  const at::Tensor rotated = at::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
  const at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);  // (B, 1, T, head_dim)
  return x * c + rotated * s;
}

}  // namespace dtune
