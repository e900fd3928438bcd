// Eval loss over a split, averaged over all ranks' tokens: rank r takes rows r, r + w, ...
// (each row exactly once; no padding repeats), one row per forward, dropout off, no grad.
#pragma once

#include <cstdint>

#include <c10/core/Device.h>

namespace dtune {

class Decoder;
class Hdf5Dataset;
namespace dist {
class Communicator;
}

struct EvalResult {
  double loss = 0;     // mean token cross-entropy over every completion token of the split
  int64_t tokens = 0;  // loss tokens counted
  int64_t rows = 0;
};

// REQUIRES: called on every rank. Leaves the model in eval mode.
EvalResult evaluate(Decoder& model, const Hdf5Dataset& data, dist::Communicator& comm, c10::Device device);

}  // namespace dtune
