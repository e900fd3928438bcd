// Dynamic fp16 loss scale: halve on overflow, double after growth_interval clean steps.
#include "dtune/train/loss_scaler.h"

#include <nlohmann/json.hpp>

#include "dtune/core/error.h"

namespace dtune {

LossScaler::LossScaler(bool enabled, double init_scale, int64_t growth_interval)
    : enabled_(enabled), scale_(init_scale), growth_interval_(growth_interval) {}

bool LossScaler::update(bool found_nonfinite) {
  if (found_nonfinite) {
    if (enabled_) scale_ = std::max(scale_ * 0.5, 1.0 / 65536.0);
    clean_steps_ = 0;
    return false;
  }
  if (enabled_ && ++clean_steps_ >= growth_interval_) {
    scale_ *= 2.0;
    clean_steps_ = 0;
  }
  return true;
}

nlohmann::json LossScaler::state() const {
  return {{"enabled", enabled_}, {"scale", scale_}, {"growth_interval", growth_interval_}, {"clean_steps", clean_steps_}};
}

void LossScaler::load_state(const nlohmann::json& s) {
  try {
    scale_ = s.at("scale").get<double>();
    clean_steps_ = s.at("clean_steps").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(dtune::str("checkpoint loss-scaler state is malformed: ", e.what()));
  }
}

}  // namespace dtune
