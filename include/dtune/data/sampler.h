// ShardSampler: which dataset rows rank r of w visits in epoch e, in which order. Knows ranks
// only as (rank, world_size), so tests simulate many ranks in one process.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

namespace dtune {

// Reader position that a checkpoint saves and restores exactly. position counts rows this rank
// has consumed in the current epoch (the batcher advances it); the same on every rank.
struct SamplerState {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t position = 0;
  int64_t num_rows = 0;    // for checking on restore that the dataset is the same
  int64_t world_size = 1;  // ditto: a resume must use the same world size
};
void to_json(nlohmann::json& j, const SamplerState& s);
void from_json(const nlohmann::json& j, SamplerState& s);

struct SamplerOptions {
  uint64_t seed = 0;       // with the epoch, fixes the shuffle
  bool shuffle = true;     // false: rows in file order
  // Uneven split (num_rows % world_size != 0); every rank must take the same number of steps:
  //  false (default): wrap-around padding. The epoch order is extended with its own first
  //         rows until it divides evenly, so a few rows are seen twice in that epoch.
  //  true: the last num_rows % world_size rows of the (shuffled) order are dropped that epoch.
  bool drop_last = false;
};

// The epoch order is a permutation of [0, num_rows) by (seed, epoch) (Fisher-Yates driven by
// splitmix64, identical on every platform), extended or cut as above to a multiple of
// world_size; rank r takes its elements r, r + w, r + 2w, ... So over one epoch all ranks
// together visit every row exactly once (plus the padding repeats), and the per-rank count
// rows_per_rank() is equal on all ranks.
class ShardSampler {
 public:
  // Throws dtune::Error when rank/world are inconsistent or no rank would get a row.
  ShardSampler(int64_t num_rows, int rank, int world_size, SamplerOptions options);

  int64_t rows_per_rank() const { return rows_per_rank_; }
  int64_t num_rows() const { return num_rows_; }
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  const SamplerOptions& options() const { return options_; }

  // This rank's rows for epoch, in visiting order; size rows_per_rank().
  std::vector<int64_t> rows_for_epoch(int64_t epoch) const;
  // The global epoch order before sharding, size rows_per_rank() * world_size.
  std::vector<int64_t> global_order(int64_t epoch) const;

  // A state at the start of epoch, for this sampler's seed / rows / world.
  SamplerState start_state(int64_t epoch = 0) const;
  // Throws dtune::Error (naming the field) when state was made for another seed, dataset size
  // or world size, or its position is out of range.
  void check_state(const SamplerState& state) const;

 private:
  int64_t num_rows_;
  int rank_;
  int world_size_;
  SamplerOptions options_;
  int64_t rows_per_rank_;
};

}  // namespace dtune
