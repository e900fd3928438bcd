// Deterministic per-epoch shuffled sharding of dataset rows over ranks; see sampler.h.
#include "dtune/data/sampler.h"

#include <algorithm>
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
  if (s.reshards.empty()) return;
  nlohmann::json& list = j["reshards"] = nlohmann::json::array();
  for (const Reshard& r : s.reshards) list.push_back({{"world_size", r.world_size}, {"positions", r.positions}});
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
  s.reshards.clear();
  if (!j.contains("reshards")) return;
  const nlohmann::json& list = j.at("reshards");
  DTUNE_CHECK(list.is_array(), "data reader state: field 'reshards' is not a list; the checkpoint is damaged");
  for (const nlohmann::json& r : list) {
    DTUNE_CHECK(r.is_object() && r.contains("world_size") && r.at("world_size").is_number_integer() &&
                    r.contains("positions") && r.at("positions").is_array(),
                "data reader state: an entry of 'reshards' lacks an integer 'world_size' or a 'positions' list; the ",
                "checkpoint is damaged");
    Reshard out;
    out.world_size = r.at("world_size").get<int64_t>();
    for (const nlohmann::json& p : r.at("positions")) {
      DTUNE_CHECK(p.is_number_integer(), "data reader state: 'reshards' holds a position that is not an integer; the ",
                  "checkpoint is damaged");
      out.positions.push_back(p.get<int64_t>());
    }
    s.reshards.push_back(std::move(out));
  }
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
  return fit_to_world(std::move(perm), world_size_);
}

std::vector<int64_t> ShardSampler::fit_to_world(std::vector<int64_t> order, int64_t world) const {
  const size_t n = order.size();
  const size_t per_rank = options_.drop_last ? n / static_cast<size_t>(world) : (n + world - 1) / world;
  const size_t total = per_rank * static_cast<size_t>(world);
  if (total <= n) {
    order.resize(total);  // drop_last
  } else {
    for (size_t i = n, k = 0; i < total; ++i, ++k) order.push_back(order[k % n]);
  }
  return order;
}

std::vector<int64_t> ShardSampler::rows_for_epoch(int64_t epoch, const std::vector<Reshard>& reshards,
                                                  const ReadRule& read) const {
  std::vector<int64_t> order = global_order(epoch);
  if (!reshards.empty()) {
    // The rows of the permutation (padding repeats aside) that no earlier world had reached.
    std::vector<int64_t> left = order;
    left.resize(std::min(left.size(), static_cast<size_t>(num_rows_)));
    for (size_t k = 0; k < reshards.size(); ++k) {
      const Reshard& r = reshards[k];
      DTUNE_CHECK(r.world_size >= 1 && static_cast<int64_t>(r.positions.size()) == r.world_size,
                  "data reader state: reshard ", k, " of epoch ", epoch, " has world_size ", r.world_size, " and ",
                  r.positions.size(), " positions; the checkpoint is damaged");
      const size_t real = left.size();
      const std::vector<int64_t> dealt = fit_to_world(left, r.world_size);
      const auto share = static_cast<int64_t>(dealt.size()) / r.world_size;
      std::vector<bool> reached(dealt.size(), false);
      std::vector<int64_t> rank_share;
      std::vector<bool> rank_reached;
      for (int64_t rank = 0; rank < r.world_size; ++rank) {
        const int64_t p = r.positions[static_cast<size_t>(rank)];
        DTUNE_CHECK(p >= 0 && p <= share, "data reader state: reshard ", k, " of epoch ", epoch, ": rank ", rank,
                    " of ", r.world_size, " is at row ", p, " of its ", share, "; the checkpoint is damaged");
        rank_share.clear();
        for (int64_t i = 0; i < share; ++i) rank_share.push_back(dealt[static_cast<size_t>(rank + i * r.world_size)]);
        rank_reached.assign(static_cast<size_t>(share), false);
        if (read) {
          read(rank_share, p, rank_reached);
        } else {
          std::fill(rank_reached.begin(), rank_reached.begin() + p, true);
        }
        for (int64_t i = 0; i < share; ++i)
          if (rank_reached[static_cast<size_t>(i)]) reached[static_cast<size_t>(rank + i * r.world_size)] = true;
      }
      left.clear();  // dealt's padding repeats (past real) were visited twice already; drop_last cut dealt short
      for (size_t i = 0; i < std::min(real, dealt.size()); ++i)
        if (!reached[i]) left.push_back(dealt[i]);
    }
    order = left.empty() ? left : fit_to_world(std::move(left), world_size_);
  }
  std::vector<int64_t> mine;
  mine.reserve(order.size() / static_cast<size_t>(world_size_) + 1);
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

void ShardSampler::check_state(const SamplerState& state, const ReadRule& read) const {
  DTUNE_CHECK(state.seed == options_.seed, "data reader state: seed ", state.seed,
              " differs from the configured seed ", options_.seed,
              "; resume with the seed the run started with");
  DTUNE_CHECK(state.num_rows == num_rows_, "data reader state: the checkpoint was made on a split ",
              "of ", state.num_rows, " rows, this one has ", num_rows_,
              "; resume with the same pretokenized file");
  DTUNE_CHECK(state.world_size == world_size_, "data reader state: the checkpoint was made with ",
              state.world_size, " ranks, this run has ", world_size_,
              "; resume with the same number of ranks");
  DTUNE_CHECK(state.epoch >= 0, "data reader state: epoch ", state.epoch, " is negative; the checkpoint is damaged");
  const int64_t rows = state.reshards.empty()
                           ? rows_per_rank_
                           : static_cast<int64_t>(rows_for_epoch(state.epoch, state.reshards, read).size());
  DTUNE_CHECK(state.position >= 0 && state.position <= rows, "data reader state: epoch ", state.epoch, " position ",
              state.position, " is out of range (", rows, " rows for this rank in that epoch)");
}

}  // namespace dtune
