// The trainable LoRA parameters gathered into one flat fp32 buffer, with their gradients in a
// second flat buffer of the same layout: one all-reduce and one optimizer update per step act
// on a single contiguous tensor each, and the named tensors stay live views into them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace dtune {

class ParamBucket {
 public:
  // Moves each tensor's values into the flat buffer and re-points the tensor's storage at its
  // slice (the model keeps using the same tensors), and sets each .grad to a view of grads().
  // REQUIRES: leaf fp32 tensors requiring grad, all on one device.
  explicit ParamBucket(std::vector<std::pair<std::string, at::Tensor>> named);

  at::Tensor& params() { return params_; }  // (numel) fp32
  at::Tensor& grads() { return grads_; }    // (numel) fp32
  int64_t numel() const { return params_.numel(); }
  const std::vector<std::pair<std::string, at::Tensor>>& named() const { return named_; }

  void zero_grads();
  // Autograd accumulates into the existing .grad views in place; if any grad was replaced
  // (e.g. by a hook) or never made, copy it (or zeros) into its bucket slice and re-point it.
  // A local copy on this rank, not a collective. Cheap check, no copy in the normal case.
  void copy_grads_into_bucket();

 private:
  std::vector<std::pair<std::string, at::Tensor>> named_;
  std::vector<int64_t> offsets_;
  at::Tensor params_;
  at::Tensor grads_;
};

}  // namespace dtune
