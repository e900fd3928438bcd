// The sharded frozen-weight store; see sharded_weights.h.
#include "dtune/train/sharded_weights.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "dtune/core/error.h"
#include "dtune/dist/communicator.h"
#include "dtune/io/safetensors.h"

namespace dtune {
namespace {

// The storage behind flat gets nbytes of fresh memory from its own allocator (the CUDA caching
// allocator on a GPU), or none: the views into it stay valid objects either way.
void set_storage_bytes(const at::Tensor& flat, size_t nbytes) {
  const c10::Storage& storage = flat.storage();
  if (nbytes == 0) {
    storage.set_data_ptr_noswap(c10::DataPtr(nullptr, flat.device()));
  } else {
    DTUNE_CHECK(storage.allocator() != nullptr, "ShardedWeights: the buffer's storage has no allocator");
    storage.set_data_ptr_noswap(storage.allocator()->allocate(nbytes));
  }
  storage.set_nbytes(nbytes);
}

}  // namespace

ShardedWeights::ShardedWeights(const std::vector<FrozenUnit>& units, const WeightStore& store,
                               const std::string& model_dir, dist::Communicator& group, c10::ScalarType dtype,
                               c10::Device device)
    : group_(group) {
  const int64_t G = group.world_size();
  const int64_t r = group.rank();
  const auto options = at::TensorOptions().dtype(dtype).device(device);
  const int64_t itemsize = static_cast<int64_t>(c10::elementSize(dtype));
  units_.reserve(units.size());
  for (const FrozenUnit& spec : units) {
    Unit& u = units_.emplace_back();
    std::vector<int64_t> offsets;
    int64_t numel = 0;
    for (const FrozenTensorSpec& t : spec) {
      DTUNE_CHECK(store.contains(t.name), "weight ", t.name, " is missing from the safetensors of ", model_dir);
      check_frozen_shape(t, store.entry(t.name).shape);
      offsets.push_back(numel);
      int64_t n = 1;
      for (const int64_t d : t.shape) n *= d;
      numel += n;
    }
    model_bytes_ += numel * itemsize;
    const int64_t S = (numel + G - 1) / G;  // elements per piece; the last piece ends with padding
    u.padded = S * G;
    const int64_t lo = r * S, hi = lo + S;
    u.piece = at::zeros({S}, options);
    for (size_t k = 0; k < spec.size(); ++k) {
      const int64_t begin = offsets[k], end = k + 1 < spec.size() ? offsets[k + 1] : numel;
      const int64_t a = std::max(begin, lo), b = std::min(end, hi);
      if (a >= b) continue;
      u.piece.narrow(0, a - lo, b - a).copy_(store.load_range(spec[k].name, a - begin, b - begin, dtype, device));
    }
    u.flat = at::empty({u.padded}, options);
    for (size_t k = 0; k < spec.size(); ++k) {
      const int64_t end = k + 1 < spec.size() ? offsets[k + 1] : numel;
      u.views.push_back(u.flat.narrow(0, offsets[k], end - offsets[k]).view(spec[k].shape).requires_grad_(false));
    }
    set_storage_bytes(u.flat, 0);
  }
}

std::vector<at::Tensor> ShardedWeights::tensors(size_t unit) { return units_.at(unit).views; }

void ShardedWeights::prefetch(size_t unit) {
  Unit& u = units_.at(unit);
  if (u.acquired || u.pending) return;
  set_storage_bytes(u.flat, static_cast<size_t>(u.padded) * u.flat.element_size());
  // Written through a tensor with its own version counter: the views' counter (which autograd
  // checks on the views it saved for backward) must not move when the same values come back.
  at::Tensor target = u.flat.variable_data();
  u.pending = group_.start_all_gather(u.piece, target);
}

void ShardedWeights::acquire(size_t unit) {
  Unit& u = units_.at(unit);
  if (u.acquired) return;
  prefetch(unit);
  u.pending->wait();
  u.pending.reset();
  u.acquired = true;
}

void ShardedWeights::release(size_t unit) {
  Unit& u = units_.at(unit);
  if (u.pending) {  // a prefetch nobody acquired: its gather must end before the buffer goes
    u.pending->wait();
    u.pending.reset();
    u.acquired = true;
  }
  if (!u.acquired) return;
  set_storage_bytes(u.flat, 0);
  u.acquired = false;
}

void ShardedWeights::keep_only(size_t keep) {
  for (size_t i = 0; i < units_.size(); ++i)
    if (i != keep) release(i);
  acquire(keep);
}

int64_t ShardedWeights::shard_bytes() const {
  int64_t n = 0;
  for (const Unit& u : units_) n += static_cast<int64_t>(u.piece.nbytes());
  return n;
}

ShardedWeights::~ShardedWeights() {
  for (Unit& u : units_) u.pending.reset();  // waits for gathers still running into the buffers
}

int64_t ShardedWeights::resident_bytes() const {
  int64_t n = shard_bytes();
  for (const Unit& u : units_) n += static_cast<int64_t>(u.flat.storage().nbytes());
  return n;
}

}  // namespace dtune
