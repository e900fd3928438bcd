// kernel_choice: under KernelPolicy::kReference no dtune kernel runs anywhere; under kDtune each
// runs exactly where its own limits (*_applies / *_supported) take the tensors. kernel_policy's
// names: auto, reference and the old sdpa; anything else names the option.
#include "dtune/kernels/kernel_choice.h"

#include <string>

#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include "dtune/core/error.h"
#include "dtune/kernels/cpu_attention.h"
#include "dtune/kernels/cpu_cross_entropy.h"
#include "dtune/kernels/cpu_gemv.h"
#include "dtune/kernels/cpu_rms_norm.h"
#include "dtune/kernels/cpu_rotary.h"
#include "dtune/kernels/cpu_swiglu.h"
#include "dtune/kernels/kernel_policy.h"

namespace dtune {
namespace {

BOOST_AUTO_TEST_CASE(policy_names) {
  BOOST_TEST((kernel_policy_from_name("auto", "model.attention") == KernelPolicy::kDtune));
  BOOST_TEST((kernel_policy_from_name("reference", "model.attention") == KernelPolicy::kReference));
  BOOST_TEST((kernel_policy_from_name("sdpa", "model.attention") == KernelPolicy::kReference));
  try {
    kernel_policy_from_name("flash", "model.attention");
    BOOST_FAIL("no error for model.attention = flash");
  } catch (const Error& e) {
    const std::string msg = e.what();
    BOOST_TEST(msg.find("model.attention") != std::string::npos, msg);
    BOOST_TEST(msg.find("'flash'") != std::string::npos, msg);
    BOOST_TEST(msg.find("reference") != std::string::npos, msg);
  }
}

BOOST_AUTO_TEST_CASE(the_policy_switches_every_kernel) {
  const at::Tensor x = at::randn({2, 5, 64}), w = at::randn({64});
  const at::Tensor q = at::randn({2, 4, 5, 32}), cos = at::randn({2, 5, 32}), sin = at::randn({2, 5, 32});
  const at::Tensor gate = at::randn({2, 5, 96}), up = at::randn({2, 5, 96});
  const at::Tensor logits = at::randn({6, 100});
  const at::Tensor row = at::randn({1, 64}), weight = at::randn({48, 64});
  const c10::Device cpu(c10::kCPU), cuda(c10::kCUDA, 0);

  BOOST_TEST(use_cpu_rms_norm(KernelPolicy::kDtune, x, w) == cpu_rms_norm_applies(x, w));
  BOOST_TEST(use_cpu_rotary(KernelPolicy::kDtune, q, cos, sin) == cpu_rotary_applies(q, cos, sin));
  BOOST_TEST(use_cpu_swiglu(KernelPolicy::kDtune, gate, up) == cpu_swiglu_applies(gate, up));
  BOOST_TEST(use_cpu_cross_entropy(KernelPolicy::kDtune, logits) == cpu_cross_entropy_applies(logits));
  BOOST_TEST(use_cpu_gemv(KernelPolicy::kDtune, row, weight, at::Tensor()) ==
             cpu_gemv_applies(row, weight, at::Tensor()));
  BOOST_TEST(use_cpu_attention(KernelPolicy::kDtune, at::kFloat, cpu, 64, 128) ==
             cpu_attention_supported(at::kFloat, cpu, 64, 128));
  BOOST_TEST(use_flash_varlen_attention(KernelPolicy::kDtune, at::kBFloat16, cuda, 64, /*flash_capable=*/true));
  BOOST_TEST(!use_flash_varlen_attention(KernelPolicy::kDtune, at::kBFloat16, cuda, 64, /*flash_capable=*/false));
  BOOST_TEST(!use_flash_varlen_attention(KernelPolicy::kDtune, at::kFloat, cuda, 64, true));    // fp16/bf16 only
  BOOST_TEST(!use_flash_varlen_attention(KernelPolicy::kDtune, at::kBFloat16, cpu, 64, true));  // CUDA only
  BOOST_TEST(!use_flash_varlen_attention(KernelPolicy::kDtune, at::kBFloat16, cuda, 60, true)); // head_dim % 8

  BOOST_TEST(!use_cpu_rms_norm(KernelPolicy::kReference, x, w));
  BOOST_TEST(!use_cpu_rotary(KernelPolicy::kReference, q, cos, sin));
  BOOST_TEST(!use_cpu_swiglu(KernelPolicy::kReference, gate, up));
  BOOST_TEST(!use_cpu_cross_entropy(KernelPolicy::kReference, logits));
  BOOST_TEST(!use_cpu_gemv(KernelPolicy::kReference, row, weight, at::Tensor()));
  BOOST_TEST(!use_cpu_attention(KernelPolicy::kReference, at::kFloat, cpu, 64, 128));
  BOOST_TEST(!use_flash_varlen_attention(KernelPolicy::kReference, at::kBFloat16, cuda, 64, true));
}

}  // namespace
}  // namespace dtune
