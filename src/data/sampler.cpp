// Deterministic per-epoch shuffled sharding of dataset rows over ranks; see sampler.h.
#include "dtune/data/sampler.h"

#include <nlohmann/json.hpp>
#include <numeric>

#include "dtune/core/error.h"

namespace dtune {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in [0, bound) without modulo bias (rejection sampling).
uint64_t uniform_below(uint64_t& state, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  for (;;) {
    const uint64_t r = splitmix64(state);
    if (r < limit) return r % bound;
  }
}

}  // namespace

void to_json(nlohmann::json& j, const SamplerState& s) {
  j = nlohmann::json{{"seed", s.seed},
                     {"epoch", s.epoch},
                     {"position", s.position},
                     {"num_rows", s.num_rows},
                     {"world_size", s.world_size}};
}

void from_json(const nlohmann::json& j, SamplerState& s) {
  for (const char* key : {"seed", "epoch", "position", "num_rows", "world_size"}) {
    DTUNE_CHECK(j.contains(key) && j.at(key).is_number_integer(), "data reader state: field '",
                key, "' is missing or not an integer; the checkpoint is damaged");
  }
  s.seed = j.at("seed").get<uint64_t>();
  s.epoch = j.at("epoch").get<int64_t>();
  s.position = j.at("position").get<int64_t>();
  s.num_rows = j.at("num_rows").get<int64_t>();
  s.world_size = j.at("world_size").get<int64_t>();
}

ShardSampler::ShardSampler(int64_t num_rows, int rank, int world_size, SamplerOptions options)
    : num_rows_(num_rows), rank_(rank), world_size_(world_size), options_(options) {
  DTUNE_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "internal: rank ", rank,
              " of world size ", world_size);
  DTUNE_CHECK(num_rows > 0, "the dataset split has no rows; check the pretokenized file");
  rows_per_rank_ = options_.drop_last ? num_rows / world_size
                                      : (num_rows + world_size - 1) / world_size;
  DTUNE_CHECK(rows_per_rank_ > 0, "the dataset split has ", num_rows, " rows, fewer than the ",
              world_size, " ranks, and drop_last is set: no rank would get a row; use fewer ",
              "ranks or turn drop_last off");
}

std::vector<int64_t> ShardSampler::global_order(int64_t epoch) const {
  std::vector<int64_t> perm(static_cast<size_t>(num_rows_));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  if (options_.shuffle) {
    // One stream per (seed, epoch); the mixing keeps nearby seeds/epochs unrelated.
    uint64_t state = options_.seed ^ (0xd1b54a32d192ed03ull * static_cast<uint64_t>(epoch + 1));
    splitmix64(state);
    for (size_t i = perm.size() - 1; i > 0; --i) {
      std::swap(perm[i], perm[uniform_below(state, i + 1)]);
    }
  }
  const size_t total = static_cast<size_t>(rows_per_rank_ * world_size_);
  if (total <= perm.size()) {
    perm.resize(total);  // drop_last
  } else {
    for (size_t i = perm.size(), k = 0; i < total; ++i, ++k) perm.push_back(perm[k % num_rows_]);
  }
  return perm;
}

std::vector<int64_t> ShardSampler::rows_for_epoch(int64_t epoch) const {
  const std::vector<int64_t> order = global_order(epoch);
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(rows_per_rank_));
  for (size_t i = static_cast<size_t>(rank_); i < order.size(); i += world_size_) {
    mine.push_back(order[i]);
  }
  return mine;
}

SamplerState ShardSampler::start_state(int64_t epoch) const {
  SamplerState s;
  s.seed = options_.seed;
  s.epoch = epoch;
  s.position = 0;
  s.num_rows = num_rows_;
  s.world_size = world_size_;
  return s;
}

void ShardSampler::check_state(const SamplerState& state) const {
  DTUNE_CHECK(state.seed == options_.seed, "data reader state: seed ", state.seed,
              " differs from the configured seed ", options_.seed,
              "; resume with the seed the run started with");
  DTUNE_CHECK(state.num_rows == num_rows_, "data reader state: the checkpoint was made on a split ",
              "of ", state.num_rows, " rows, this one has ", num_rows_,
              "; resume with the same pretokenized file");
  DTUNE_CHECK(state.world_size == world_size_, "data reader state: the checkpoint was made with ",
              state.world_size, " ranks, this run has ", world_size_,
              "; resume with the same number of ranks");
  DTUNE_CHECK(state.epoch >= 0 && state.position >= 0 && state.position <= rows_per_rank_,
              "data reader state: epoch ", state.epoch, " position ", state.position,
              " is out of range (", rows_per_rank_, " rows per rank)");
}

}  // namespace dtune
