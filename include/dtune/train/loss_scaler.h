// Dynamic loss scaling for fp16 (torch.amp.GradScaler semantics): multiply the loss by the
// scale; a step with non-finite gradients on any rank is skipped and halves the scale; after
// growth_interval clean steps in a row the scale doubles. Disabled (scale 1) for bf16/fp32.
#pragma once

#include <cstdint>

#include <nlohmann/json_fwd.hpp>

namespace dtune {

class LossScaler {
 public:
  LossScaler(bool enabled, double init_scale, int64_t growth_interval);

  double scale() const { return enabled_ ? scale_ : 1.0; }
  bool enabled() const { return enabled_; }
  // Call once per optimizer step with the all-rank verdict. Returns true when the step may be
  // applied (gradients finite).
  bool update(bool found_nonfinite);

  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);

 private:
  bool enabled_;
  double scale_;
  int64_t growth_interval_;
  int64_t clean_steps_ = 0;  // consecutive finite steps since the last change
};

}  // namespace dtune
