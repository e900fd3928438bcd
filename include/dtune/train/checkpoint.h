// Checkpoints: output_dir/checkpoint-STEP/ holds the PEFT adapter (adapter_config.json +
// adapter_model.safetensors, loadable by PeftModel.from_pretrained) and the trainer state
// (trainer_state.json, optimizer.safetensors, rank_states.json, config.ini). It is written under
// a temporary name and published with publish_dir (every file and folder fsync'ed, renamed,
// output_dir fsync'ed) once every rank has handed in its part, so a checkpoint-STEP folder is
// always complete, also after a power loss; the previous ones stay intact if a write fails.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "dtune/io/peft_adapter.h"

namespace dtune {

namespace dist {
class Communicator;
}

// What one rank contributes: its reader position and RNG states (JSON).
using RankState = nlohmann::json;

struct CheckpointData {
  int64_t step = 0;                 // optimizer steps completed
  nlohmann::json trainer;           // step, epoch, scaler, schedule... (trainer_state.json)
  AdapterConfig adapter_config;
  std::vector<std::pair<std::string, at::Tensor>> adapter;  // PEFT names -> fp32 tensors
  std::vector<std::pair<std::string, at::Tensor>> optimizer;  // exp_avg, exp_avg_sq, ...
  std::string config_ini;           // the resolved config
  std::string tokenizer_source;     // model folder or tokenizer.json whose files are saved too; "" = none
};

struct LoadedCheckpoint {
  std::string path;
  nlohmann::json trainer;
  std::vector<std::pair<std::string, at::Tensor>> adapter;    // on the requested device
  std::vector<std::pair<std::string, at::Tensor>> optimizer;  // on the requested device
  std::vector<RankState> rank_states;  // every rank's that wrote it, by rank
  RankState rank_state;                // this rank's; null when the checkpoint has another world size
};

// REQUIRES: called on every rank. Rank 0 writes; the others send their RankState to rank 0.
// Keeps the newest keep_last checkpoints. Returns the final path.
std::string save_checkpoint(dist::Communicator& comm, const std::string& output_dir, const CheckpointData& data,
                            const RankState& rank_state, int64_t keep_last);

// "latest" -> the newest complete checkpoint-N in output_dir (nullopt when none); a path ->
// that checkpoint (Error if it is not a complete checkpoint). Complete: its completion marker
// trainer_state.json (written last) parses as a JSON object, rank_states.json as a list, and the
// adapter and optimizer files exist. "latest" passes over a newer folder whose marker is
// unreadable (a torn write on a file system without atomic rename, a damaged disk) to the
// previous complete one, with a warning naming it. Call on one rank (rank 0) and broadcast the
// answer, so that every rank resumes the same checkpoint.
std::optional<std::string> find_checkpoint(const std::string& output_dir, const std::string& resume);

// Every rank reads the checkpoint (a shared file system, as for the output folder). A checkpoint
// of another world size loads too (rank_state is then null; the trainer reshards the data
// position from rank_states). Throws dtune::Error naming the file when a state is malformed.
LoadedCheckpoint load_checkpoint(const std::string& path, int rank, int world_size, c10::Device device);

// The AdamW moments of a loaded checkpoint's optimizer.safetensors: flat fp32 exp_avg and
// exp_avg_sq. Throws dtune::Error naming the checkpoint when a tensor name is unknown or one of
// the two is missing (never a silent guess).
struct AdamWMoments {
  at::Tensor exp_avg;
  at::Tensor exp_avg_sq;
};
AdamWMoments adamw_moments(const LoadedCheckpoint& checkpoint);

// The default generator of device (the dropout RNG) as {"device": "cpu" | "cuda", "state": hex of
// its get_state() bytes}, for rank_states.json.
nlohmann::json save_rng_state(c10::Device device);

// Restores save_rng_state's output (or the plain hex string older checkpoints hold, whose device
// kind is told by the state's size) into device's default generator and returns true. A state
// from another device kind (a CPU checkpoint resumed on a GPU or back: mt19937 and Philox states
// do not convert) re-seeds the generator with reseed instead, warns that the dropout masks differ
// from an uninterrupted run, and returns false. Throws dtune::Error naming checkpoint when the
// state is malformed or its size does not fit this libtorch's generator of the same kind.
bool restore_rng_state(c10::Device device, const nlohmann::json& saved, const std::string& checkpoint,
                       uint64_t reseed);

}  // namespace dtune
