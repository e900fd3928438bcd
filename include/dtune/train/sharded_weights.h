// The sharded frozen-weight store (train.sharding = full | hybrid): FSDP's FULL_SHARD /
// HYBRID_SHARD (ZeRO-3) for the frozen base of a LoRA run. Each unit of the model (the
// embedding, one decoder layer, the final norm, the LM head; Decoder::frozen_units) is laid out
// flat, padded to a multiple of the group size G, and rank r of the shard group keeps elements
// [r * S, (r + 1) * S) of it, S = padded / G (FSDP's FlatParameter; only the last piece holds
// padding). acquire(u) all-gathers the pieces into a buffer of the full unit, whose tensors the
// Decoder reads through views; release(u) frees the buffer (the views stay and are refilled by
// the next acquire, as FSDP frees and refills the unsharded storage).
//
// This is the one piece where the model meets the communicator; it lives in train/, above both
// model/ (the FrozenWeights interface it implements) and dist/ (the Communicator it gathers with).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dtune/model/frozen_weights.h"

namespace dtune {

class WeightStore;
namespace dist {
class Communicator;
class PendingCollective;
}

class ShardedWeights final : public FrozenWeights {
 public:
  // Reads this rank's piece of every unit from store (only those byte ranges of the mapped
  // safetensors files), in dtype on device; model_dir names the folder in errors. group: the
  // shard group (the whole job for full, one node's ranks for hybrid); it must outlive this
  // store, and acquire/release/keep_only are collectives over it (every rank of the group calls
  // them in the same order). Throws dtune::Error naming the weight when one is missing from the
  // safetensors files or its shape differs from the spec.
  ShardedWeights(const std::vector<FrozenUnit>& units, const WeightStore& store, const std::string& model_dir,
                 dist::Communicator& group, c10::ScalarType dtype, c10::Device device);

  ~ShardedWeights() override;
  ShardedWeights(const ShardedWeights&) = delete;
  ShardedWeights& operator=(const ShardedWeights&) = delete;

  std::vector<at::Tensor> tensors(size_t unit) override;
  void acquire(size_t unit) override;  // all_gather of the unit's pieces; a collective
  void release(size_t unit) override;
  void keep_only(size_t keep) override;
  // Starts the unit's gather (Communicator::start_all_gather: a side stream with NCCL) so that
  // it overlaps the compute queued before acquire(unit), which then only waits for it.
  void prefetch(size_t unit) override;
  bool collective() const override { return true; }
  int64_t resident_bytes() const override;  // pieces + buffers of acquired units

  // Bytes of the model's frozen weights, unpadded (what one rank holds when unsharded).
  int64_t model_bytes() const { return model_bytes_; }
  // Bytes of this rank's pieces alone (between steps, what it holds).
  int64_t shard_bytes() const;
  // Elements of unit u's flat layout including the padding (a multiple of the group size).
  int64_t padded_numel(size_t unit) const { return units_.at(unit).padded; }

 private:
  struct Unit {
    int64_t padded = 0;       // flat elements, a multiple of the group size
    at::Tensor piece;         // (padded / G) this rank's elements
    at::Tensor flat;          // (padded) the gathered unit; its storage is empty unless acquired
    std::vector<at::Tensor> views;  // the unit's tensors, views into flat
    std::unique_ptr<dist::PendingCollective> pending;  // prefetch(u) started, acquire(u) not yet
    bool acquired = false;
  };

  dist::Communicator& group_;
  std::vector<Unit> units_;
  int64_t model_bytes_ = 0;
};

}  // namespace dtune
