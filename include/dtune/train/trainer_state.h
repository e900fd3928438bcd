// TrainerState: where a training run stands, the part of trainer_state.json in a checkpoint
// that is the same on every rank (what each rank alone knows, its reader position and RNG, is
// its RankState). Written and read field by field, so a missing or mistyped field names itself.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace dtune {

struct TrainerState {
  int64_t step = 0;              // optimizer steps done (applied or skipped); the checkpoint's N
  int64_t epoch = 0;             // 0-based epoch the next micro-batch belongs to
  int64_t micro_in_epoch = 0;    // micro-batches of that epoch done, the same on every rank
  int64_t optimizer_steps = 0;   // AdamW updates applied (fp16: step minus skipped steps)
  int64_t total_steps = 0;       // the run's planned steps
  nlohmann::json loss_scaler;    // LossScaler::state()
  int64_t world_size = 1;        // ranks that wrote the checkpoint
  std::string dtune_version;     // DTUNE_VERSION that wrote it
  // What the data.path file held when the run started (its tokenizer, source and template
  // hashes, max_length, split seed, train rows and tokens): a resume must read the same data.
  // Empty in checkpoints written before dtune recorded it (then not compared).
  nlohmann::json data;
};

// The JSON object of trainer_state.json (keys as the field names).
void to_json(nlohmann::json& j, const TrainerState& s);
// Throws dtune::Error naming the missing or mistyped key.
void from_json(const nlohmann::json& j, TrainerState& s);

}  // namespace dtune
