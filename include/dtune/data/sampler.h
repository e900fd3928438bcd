// ShardSampler: which dataset rows rank r of w visits in epoch e, in which order. Knows ranks
// only as (rank, world_size), so tests simulate many ranks in one process.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <vector>

namespace dtune {

// A change of world size inside an epoch (a run resumed on another number of ranks): the
// world that had been reading the epoch and how far each of its ranks had read (rows of its
// share, positions[r] for rank r). The rows those ranks had not reached are dealt out anew
// among the next world (ShardSampler::rows_for_epoch).
struct Reshard {
  int64_t world_size = 1;
  std::vector<int64_t> positions;  // size world_size
};

// Reader position that a checkpoint saves and restores exactly. position counts rows this rank
// has consumed in the current epoch (the batcher advances it); padded batching keeps it equal
// on every rank, packing does not.
struct SamplerState {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t position = 0;
  int64_t num_rows = 0;    // for checking on restore that the dataset is the same
  int64_t world_size = 1;  // the world this state is for (a resume on another one reshards)
  // The epoch's earlier worlds, oldest first; empty unless the run was resumed on another
  // number of ranks in this epoch. JSON key "reshards", written only when not empty, so
  // checkpoints of runs that never resharded are unchanged.
  std::vector<Reshard> reshards;
};
void to_json(nlohmann::json& j, const SamplerState& s);
void from_json(const nlohmann::json& j, SamplerState& s);

// Which rows of a rank's share a reader at `position` has consumed: sets reached[i] for each
// index i of share it has read (reached has share's size, all false on entry). A plain or packed
// reader reads a prefix (the default); a reader that sorts windows by length does not
// (Batcher::mark_read). Used to deal out what earlier worlds left (Reshard).
using ReadRule = std::function<void(const std::vector<int64_t>& share, int64_t position, std::vector<bool>& reached)>;

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
//
// After a reshard (a resume on another number of ranks mid-epoch) the epoch goes on with the
// rows no rank of the earlier world had reached, in their order, extended or cut to a multiple
// of this world and dealt out the same way: every row of the epoch is still visited once
// (padding repeats of an earlier world are not visited again). As torchtitan's and DCP's
// resharding of a data loader, the order is sample-exact, not the uninterrupted run's order per
// rank.
class ShardSampler {
 public:
  // Throws dtune::Error when rank/world are inconsistent or no rank would get a row.
  ShardSampler(int64_t num_rows, int rank, int world_size, SamplerOptions options);

  int64_t rows_per_rank() const { return rows_per_rank_; }
  int64_t num_rows() const { return num_rows_; }
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  const SamplerOptions& options() const { return options_; }

  // This rank's rows for epoch, in visiting order; size rows_per_rank() without reshards.
  // With reshards (SamplerState::reshards of that epoch), the rows left by the earlier worlds,
  // dealt out over this one (above). Throws dtune::Error when a reshard does not describe a
  // reading of this epoch (a world size below 1, a positions list of another length, a
  // position past that world's share).
  // read says which rows of its share an earlier world's rank had consumed (default: a prefix).
  std::vector<int64_t> rows_for_epoch(int64_t epoch, const std::vector<Reshard>& reshards = {},
                                      const ReadRule& read = {}) const;
  // The global epoch order before sharding, size rows_per_rank() * world_size.
  std::vector<int64_t> global_order(int64_t epoch) const;

  // A state at the start of epoch, for this sampler's seed / rows / world.
  SamplerState start_state(int64_t epoch = 0) const;
  // Throws dtune::Error (naming the field) when state was made for another seed, dataset size
  // or world size, or its position is out of range (of its epoch's rows, reshards included,
  // dealt out with read as in rows_for_epoch).
  void check_state(const SamplerState& state, const ReadRule& read = {}) const;

 private:
  int64_t num_rows_;
  int rank_;
  int world_size_;
  SamplerOptions options_;
  int64_t rows_per_rank_;

  // order (a permutation or what is left of one) extended by wrap-around or cut (drop_last) to a
  // multiple of world.
  std::vector<int64_t> fit_to_world(std::vector<int64_t> order, int64_t world) const;
};

}  // namespace dtune
