// The resident frozen-weight store and the shape check every store shares.
#include "dtune/model/frozen_weights.h"

#include <ATen/ATen.h>

#include "dtune/core/error.h"

namespace dtune {
namespace {

// Every weight loaded whole; acquire and release have nothing to do.
class ResidentWeights final : public FrozenWeights {
 public:
  explicit ResidentWeights(std::vector<std::vector<at::Tensor>> units) : units_(std::move(units)) {}
  std::vector<at::Tensor> tensors(size_t unit) override { return units_.at(unit); }
  void acquire(size_t) override {}
  void release(size_t) override {}
  void keep_only(size_t) override {}
  bool collective() const override { return false; }
  int64_t resident_bytes() const override {
    int64_t n = 0;
    for (const auto& unit : units_)
      for (const at::Tensor& t : unit) n += static_cast<int64_t>(t.nbytes());
    return n;
  }

 private:
  std::vector<std::vector<at::Tensor>> units_;
};

}  // namespace

void check_frozen_shape(const FrozenTensorSpec& spec, const std::vector<int64_t>& shape) {
  DTUNE_CHECK(shape == spec.shape, "weight ", spec.name, " has shape ", shape_str(shape), " but config.json implies ",
              shape_str(spec.shape), "; the config and the safetensors files do not belong together");
}

std::unique_ptr<FrozenWeights> make_resident_weights(const std::vector<FrozenUnit>& units, const WeightLoader& load,
                                                     c10::ScalarType dtype, c10::Device device) {
  std::vector<std::vector<at::Tensor>> loaded;
  loaded.reserve(units.size());
  for (const FrozenUnit& unit : units) {
    std::vector<at::Tensor>& out = loaded.emplace_back();
    for (const FrozenTensorSpec& spec : unit) {
      at::Tensor t = load(spec.name, dtype, device);
      check_frozen_shape(spec, t.sizes().vec());
      out.push_back(t.requires_grad_(false));
    }
  }
  return std::make_unique<ResidentWeights>(std::move(loaded));
}

}  // namespace dtune
