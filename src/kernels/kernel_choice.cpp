// Whether dtune's kernel runs at a call site (see kernel_choice.h): the policy first, then the
// kernel's own limits.
#include "dtune/kernels/kernel_choice.h"

#include "dtune/kernels/cpu_attention.h"
#include "dtune/kernels/cpu_cross_entropy.h"
#include "dtune/kernels/cpu_gemv.h"
#include "dtune/kernels/cpu_rms_norm.h"
#include "dtune/kernels/cpu_rotary.h"
#include "dtune/kernels/cpu_swiglu.h"

namespace dtune {

bool use_cpu_rms_norm(KernelPolicy policy, const at::Tensor& x, const at::Tensor& weight) {
  return policy == KernelPolicy::kDtune && cpu_rms_norm_applies(x, weight);
}

bool use_cpu_rotary(KernelPolicy policy, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return policy == KernelPolicy::kDtune && cpu_rotary_applies(x, cos, sin);
}

bool use_cpu_swiglu(KernelPolicy policy, const at::Tensor& gate, const at::Tensor& up) {
  return policy == KernelPolicy::kDtune && cpu_swiglu_applies(gate, up);
}

bool use_cpu_cross_entropy(KernelPolicy policy, const at::Tensor& logits) {
  return policy == KernelPolicy::kDtune && cpu_cross_entropy_applies(logits);
}

bool use_cpu_gemv(KernelPolicy policy, const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  return policy == KernelPolicy::kDtune && cpu_gemv_applies(x, w, bias);
}

bool use_cpu_attention(KernelPolicy policy, c10::ScalarType dtype, c10::Device device, int64_t head_dim,
                       int64_t seq_len) {
  return policy == KernelPolicy::kDtune && cpu_attention_supported(dtype, device, head_dim, seq_len);
}

bool use_flash_varlen_attention(KernelPolicy policy, c10::ScalarType dtype, c10::Device device, int64_t head_dim,
                                bool flash_capable) {
  return policy == KernelPolicy::kDtune && flash_capable && device.is_cuda() &&
         (dtype == c10::ScalarType::Half || dtype == c10::ScalarType::BFloat16) && head_dim % 8 == 0 &&
         head_dim <= 256;
}

}  // namespace dtune
