// Which kernels a model runs: dtune's own (src/kernels/) where they apply, or the libtorch
// reference formulation everywhere. The one switch behind `model.attention` (config) and
// DecoderOptions::kernels; the per-kernel decision that reads it is kernels/kernel_choice.h.
// libtorch-free, so config/ can validate the option.
#pragma once

#include <string>

namespace dtune {

enum class KernelPolicy {
  // dtune's kernels wherever they take the tensors: on CPU the fused AVX-512 training kernels
  // (cpu_attention, cpu_rms_norm, cpu_rotary, cpu_swiglu, cpu_cross_entropy) and the few-row
  // decoding product cpu_gemv; on CUDA flash attention's varlen kernel for packed rows.
  kDtune,
  // The libtorch reference for every one of them: SDPA (with a mask tensor for packed rows)
  // and the ATen op sequences the kernels are tested against. To compare, or to rule dtune's
  // kernels out of a problem.
  kReference,
};

// The accepted values of `model.attention`, for help texts: "auto | reference (old name: sdpa)".
const char* kernel_policy_values();

// "auto" -> kDtune; "reference" -> kReference; "sdpa" (its name before the policy covered every
// kernel, kept so existing configs and checkpoints' config.ini still read) -> kReference.
// Throws dtune::Error naming `option`, the value and the accepted values otherwise.
KernelPolicy kernel_policy_from_name(const std::string& value, const std::string& option);

}  // namespace dtune
