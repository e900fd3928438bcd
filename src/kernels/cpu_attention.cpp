// cpu_attention: the autograd function around the fused CPU kernels (cpu_attention_kernel.h).
#include "dtune/kernels/cpu_attention.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include "cpu_attention_kernel.h"
#include "dtune/core/error.h"

namespace dtune {
namespace {

namespace kernel = cpu_attention_kernel;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kMaxSeqLen = 4096;

// fp32 with the last dim contiguous, as the kernels read rows (no copy for such fp32 input).
at::Tensor fp32_rows(const at::Tensor& t) {
  const at::Tensor f = t.to(at::kFloat);
  return f.stride(3) == 1 ? f : f.contiguous();
}

kernel::View view_of(const at::Tensor& t) {
  kernel::View v;
  v.data = t.data_ptr<float>();
  v.sb = t.stride(0);
  v.sh = t.stride(1);
  v.st = t.stride(2);
  return v;
}

// (B, H, T, D) fp32 laid out as (B, T, H, D): what the output projection reads without a copy.
at::Tensor empty_bthd(int64_t B, int64_t H, int64_t T, int64_t D) {
  return at::empty({B, T, H, D}, at::TensorOptions().dtype(at::kFloat)).transpose(1, 2);
}

// (B, H, D, padded_len(T)) contiguous: mul * x transposed, zero beyond T (x: (B, p.H, T, D)).
at::Tensor transposed_padded(const kernel::Problem& p, const at::Tensor& x, float mul) {
  at::Tensor xT = at::empty({p.B, p.H, p.D, kernel::padded_len(p.T)}, at::TensorOptions().dtype(at::kFloat));
  kernel::transpose_padded(p, view_of(x), mul, xT.mutable_data_ptr<float>());
  return xT;
}

kernel::Problem problem_of(const at::Tensor& q, const at::Tensor& k, const at::Tensor& ws32) {
  kernel::Problem p;
  p.B = q.size(0);
  p.H = q.size(1);
  p.T = q.size(2);
  p.D = q.size(3);
  p.Hkv = k.size(1);
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.D)));
  p.window_starts = ws32.defined() ? ws32.const_data_ptr<int32_t>() : nullptr;
  p.threads = static_cast<int>(std::max(1, at::get_num_threads()));
  return p;
}

at::Tensor thread_buffers(const kernel::Problem& p) {
  return at::empty({p.threads * kernel::thread_buffer_floats(p)}, at::TensorOptions().dtype(at::kFloat));
}

// Results in the inputs' dtype, keeping the (B, T, H, D) layout.
at::Tensor to_dtype(const at::Tensor& x, at::ScalarType dtype) { return dtype == at::kFloat ? x : x.to(dtype); }

// The window starts as int32 (undefined = causal). Wrapped, so that autograd does not take it
// for a differentiable input (an undefined tensor input is not allowed).
struct Windows {
  at::Tensor starts;
};

struct CpuAttentionFunction : public torch::autograd::Function<CpuAttentionFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q_in, const at::Tensor& k_in,
                            const at::Tensor& v_in, const Windows& windows) {
    RECORD_FUNCTION("dtune::cpu_attention_forward", std::vector<c10::IValue>());
    const at::Tensor& ws32 = windows.starts;
    const at::Tensor q = fp32_rows(q_in), k = fp32_rows(k_in), v = fp32_rows(v_in);
    const kernel::Problem p = problem_of(q, k, ws32);
    const at::Tensor qT = transposed_padded(p, q, p.scale);
    at::Tensor out = empty_bthd(p.B, p.H, p.T, p.D);
    at::Tensor lse = at::empty({p.B, p.H, p.T}, at::TensorOptions().dtype(at::kFloat));
    at::Tensor buffers = thread_buffers(p);
    kernel::forward(p, qT.const_data_ptr<float>(), view_of(k), view_of(v), view_of(out),
                    lse.mutable_data_ptr<float>(), buffers.mutable_data_ptr<float>());
    out = to_dtype(out, q_in.scalar_type());
    ctx->save_for_backward({q_in, k_in, v_in, out, lse});
    ctx->saved_data["window_starts"] = ws32.defined() ? at::IValue(ws32) : at::IValue();
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    RECORD_FUNCTION("dtune::cpu_attention_backward", std::vector<c10::IValue>());
    const variable_list saved = ctx->get_saved_variables();
    const at::IValue& ws = ctx->saved_data["window_starts"];
    const at::Tensor ws32 = ws.isTensor() ? ws.toTensor() : at::Tensor();
    const at::ScalarType dtype = saved[0].scalar_type();
    const at::Tensor q = fp32_rows(saved[0]), k = fp32_rows(saved[1]), v = fp32_rows(saved[2]);
    const at::Tensor dout = fp32_rows(grad_outputs[0]);
    const kernel::Problem p = problem_of(q, k, ws32);
    const at::Tensor qT = transposed_padded(p, q, p.scale), doT = transposed_padded(p, dout, 1.0f);
    at::Tensor delta = at::empty({p.B, p.H, p.T}, at::TensorOptions().dtype(at::kFloat));  // rowsum(dO * O)
    kernel::row_dots(p, view_of(dout), view_of(fp32_rows(saved[3])), delta.mutable_data_ptr<float>());
    at::Tensor dq = empty_bthd(p.B, p.H, p.T, p.D);
    at::Tensor dk = empty_bthd(p.B, p.Hkv, p.T, p.D);
    at::Tensor dv = empty_bthd(p.B, p.Hkv, p.T, p.D);
    at::Tensor scratch = at::empty({kernel::backward_scratch_floats(p)}, at::TensorOptions().dtype(at::kFloat));
    at::Tensor buffers = thread_buffers(p);
    kernel::backward(p, view_of(q), qT.const_data_ptr<float>(), view_of(k), view_of(v), view_of(dout),
                     doT.const_data_ptr<float>(), saved[4].const_data_ptr<float>(),
                     delta.const_data_ptr<float>(), view_of(dq), view_of(dk), view_of(dv),
                     scratch.mutable_data_ptr<float>(), buffers.mutable_data_ptr<float>());
    return {to_dtype(dq, dtype), to_dtype(dk, dtype), to_dtype(dv, dtype), at::Tensor()};  // none for the windows
  }
};

}  // namespace

bool cpu_attention_supported(c10::ScalarType dtype, c10::Device device, int64_t head_dim, int64_t seq_len) {
  return kernel::cpu_supported() && device.is_cpu() &&
         (dtype == at::kFloat || dtype == at::kBFloat16) && head_dim > 0 && head_dim % 16 == 0 &&
         head_dim <= kernel::kMaxHeadDim && seq_len >= 1 && seq_len <= kMaxSeqLen;
}

at::Tensor cpu_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         const at::Tensor& window_starts) {
  DTUNE_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.sizes() == v.sizes() &&
                  q.size(0) == k.size(0) && q.size(2) == k.size(2) && q.size(3) == k.size(3) &&
                  k.size(1) > 0 && q.size(1) % k.size(1) == 0,
              "cpu_attention: q (B, H, T, D) and k, v (B, Hkv, T, D) with H % Hkv == 0, got ",
              q.sizes(), ", ", k.sizes(), ", ", v.sizes());
  DTUNE_CHECK(q.scalar_type() == k.scalar_type() && q.scalar_type() == v.scalar_type() &&
                  cpu_attention_supported(q.scalar_type(), q.device(), q.size(3), q.size(2)) &&
                  k.device().is_cpu() && v.device().is_cpu(),
              "cpu_attention: not supported for ", q.scalar_type(), " on ", q.device(), " with head_dim ",
              q.size(3), " and ", q.size(2), " tokens (see cpu_attention_supported)");
  at::Tensor ws32;
  if (window_starts.defined()) {
    DTUNE_CHECK(window_starts.dim() == 2 && window_starts.size(0) == q.size(0) &&
                    window_starts.size(1) == q.size(2),
                "cpu_attention: window_starts must be (B, T), got ", window_starts.sizes());
    ws32 = window_starts.to(at::kCPU, at::kInt).contiguous();
    const at::Tensor t = at::arange(q.size(2), ws32.options()).unsqueeze(0);
    DTUNE_CHECK(((ws32 >= 0) & (ws32 <= t)).all().item<bool>(),
                "cpu_attention: every window start must lie in [0, t]");
  }
  return CpuAttentionFunction::apply(q, k, v, Windows{ws32});
}

}  // namespace dtune
