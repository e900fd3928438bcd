// TrainerState <-> JSON; see include/dtune/train/trainer_state.h.
#include "dtune/train/trainer_state.h"

#include "dtune/core/error.h"

namespace dtune {
namespace {

template <typename T>
T required(const nlohmann::json& j, const char* key) {
  DTUNE_CHECK(j.is_object() && j.contains(key), "trainer state: \"", key, "\" is missing");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(str("trainer state: \"", key, "\" has the wrong type (", j.at(key).type_name(), ")"));
  }
}

}  // namespace

void to_json(nlohmann::json& j, const TrainerState& s) {
  j = {{"step", s.step},
       {"epoch", s.epoch},
       {"micro_in_epoch", s.micro_in_epoch},
       {"optimizer_steps", s.optimizer_steps},
       {"total_steps", s.total_steps},
       {"loss_scaler", s.loss_scaler},
       {"world_size", s.world_size},
       {"dtune_version", s.dtune_version}};
  if (!s.data.is_null()) j["data"] = s.data;
}

void from_json(const nlohmann::json& j, TrainerState& s) {
  s.step = required<int64_t>(j, "step");
  s.epoch = required<int64_t>(j, "epoch");
  s.micro_in_epoch = required<int64_t>(j, "micro_in_epoch");
  s.optimizer_steps = required<int64_t>(j, "optimizer_steps");
  s.total_steps = required<int64_t>(j, "total_steps");
  DTUNE_CHECK(j.contains("loss_scaler") && j.at("loss_scaler").is_object(), "trainer state: \"loss_scaler\" is missing");
  s.loss_scaler = j.at("loss_scaler");
  s.world_size = required<int64_t>(j, "world_size");
  s.dtune_version = required<std::string>(j, "dtune_version");
  s.data = j.value("data", nlohmann::json());
}

}  // namespace dtune
