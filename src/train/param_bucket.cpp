// Flat parameter and gradient buffers for the LoRA tensors; see param_bucket.h.
#include "dtune/train/param_bucket.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "dtune/core/error.h"

namespace dtune {

ParamBucket::ParamBucket(std::vector<std::pair<std::string, at::Tensor>> named) : named_(std::move(named)) {
  DTUNE_CHECK(!named_.empty(), "no trainable LoRA parameters (check lora.target_modules)");
  int64_t total = 0;
  const c10::Device device = named_.front().second.device();
  for (auto& [name, t] : named_) {
    DTUNE_CHECK(t.scalar_type() == at::kFloat && t.requires_grad() && t.is_leaf(),
                "trainable tensor ", name, " must be an fp32 leaf requiring grad");
    DTUNE_CHECK(t.device() == device, "trainable tensor ", name, " is on ", t.device(), ", others on ", device);
    offsets_.push_back(total);
    total += t.numel();
  }
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
  params_ = at::empty({total}, opts);
  grads_ = at::zeros({total}, opts);
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < named_.size(); ++i) {
    at::Tensor& t = named_[i].second;
    const int64_t n = t.numel();
    params_.narrow(0, offsets_[i], n).copy_(t.reshape({n}));
    // Same TensorImpl, new storage: every holder of t (the LoRA layer) now reads the bucket.
    const at::Tensor slice = params_.narrow(0, offsets_[i], n).view(t.sizes());
    t.set_(params_.storage(), slice.storage_offset(), slice.sizes(), slice.strides());
    t.mutable_grad() = grads_.narrow(0, offsets_[i], n).view(t.sizes());
  }
}

void ParamBucket::zero_grads() { grads_.zero_(); }

void ParamBucket::copy_grads_into_bucket() {
  for (size_t i = 0; i < named_.size(); ++i) {
    at::Tensor& t = named_[i].second;
    const int64_t n = t.numel();
    at::Tensor slot = grads_.narrow(0, offsets_[i], n);
    const at::Tensor& g = t.grad();
    if (g.defined() && g.data_ptr() == slot.data_ptr()) continue;
    at::NoGradGuard no_grad;
    if (g.defined()) slot.copy_(g.reshape({n}));
    else slot.zero_();
    t.mutable_grad() = slot.view(t.sizes());
  }
}

}  // namespace dtune
