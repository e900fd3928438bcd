// Where the Decoder's frozen base weights live: the weight-provider interface that lets the same
// model code run with every weight resident on this rank, or with each rank holding a shard
// that is gathered just before use (train.sharding, FSDP's FULL_SHARD / HYBRID_SHARD; the
// sharded store is train/sharded_weights.h). Model code never sees a rank: it only says which
// unit it is about to run and when it is done with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace dtune {

// One frozen tensor: its Hugging Face name and the shape config.json implies.
struct FrozenTensorSpec {
  std::string name;            // "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // (out, in) for a projection, (H) for a norm
};

// The tensors that one piece of the forward uses together; the unit of gathering (FSDP's
// FlatParameter). The Decoder's units: 0 the token embedding, 1..L the decoder layers (norms,
// projections, biases), L+1 the final norm, L+2 the LM head when it is not tied.
using FrozenUnit = std::vector<FrozenTensorSpec>;

// Reads a weight by HF name in dtype on device; throws dtune::Error when absent.
// WeightStore::load fits.
using WeightLoader =
    std::function<at::Tensor(const std::string& name, c10::ScalarType dtype, c10::Device device)>;

class FrozenWeights {
 public:
  virtual ~FrozenWeights() = default;

  // Unit u's tensors in its spec order, each of its spec's shape, in the model dtype on the
  // model device, requires_grad false. The same tensors for the life of the store. In a
  // sharded store they are views whose memory exists only between acquire(u) and release(u):
  // reading them otherwise is undefined.
  virtual std::vector<at::Tensor> tensors(size_t unit) = 0;

  // Makes unit u's tensors readable (a sharded store all-gathers it); a no-op when it already is.
  virtual void acquire(size_t unit) = 0;
  // Frees what acquire(u) allocated (a sharded store); a no-op when u is not acquired.
  virtual void release(size_t unit) = 0;
  // Releases every acquired unit but keep, then acquires keep.
  virtual void keep_only(size_t keep) = 0;
  // A hint that acquire(u) comes next: a store that can overlap the gather with compute starts
  // it now. acquire(u) must still be called before u is read.
  virtual void prefetch(size_t unit) { (void)unit; }

  // True when acquire and release are collectives over a group of ranks: then every rank of
  // the group must run every forward and backward, in the same order (training's empty
  // micro-batches, eval, and the generation test run in lockstep).
  virtual bool collective() const = 0;
  // Bytes of frozen weights this rank holds now, counted from the tensors it holds (shards
  // plus acquired units for a sharded store).
  virtual int64_t resident_bytes() const = 0;
};

// Makes the store for the units of a model, in dtype on device. The Decoder calls it once.
using FrozenWeightsFactory = std::function<std::unique_ptr<FrozenWeights>(
    const std::vector<FrozenUnit>& units, c10::ScalarType dtype, c10::Device device)>;

// Every tensor loaded whole through load and kept (train.sharding = none, generation, merge).
// Throws dtune::Error naming the weight when one is missing or its shape differs from the spec.
std::unique_ptr<FrozenWeights> make_resident_weights(const std::vector<FrozenUnit>& units, const WeightLoader& load,
                                                     c10::ScalarType dtype, c10::Device device);

// Throws dtune::Error unless shape equals spec.shape: "weight NAME has shape (..) but
// config.json implies (..); the config and the safetensors files do not belong together".
void check_frozen_shape(const FrozenTensorSpec& spec, const std::vector<int64_t>& shape);

}  // namespace dtune
