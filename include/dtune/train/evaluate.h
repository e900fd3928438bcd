// Eval loss over a split, averaged over all ranks' tokens: rank r takes rows r, r + w, ...
// (each row exactly once; no padding repeats) in file order, in micro-batches of batch_size rows
// padded on the right as training's are, dropout off, no grad. The loss sums accumulate on the
// device and are read back once, at the end.
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

// REQUIRES: called on every rank. Leaves the model in eval mode. batch_size >= 1 (the trainer
// passes data.micro_batch_size); throws dtune::Error otherwise. The loss equals the one-row-per-
// forward loss up to float summation order: under causal attention a real token never sees the
// right padding.
EvalResult evaluate(Decoder& model, const Hdf5Dataset& data, dist::Communicator& comm, c10::Device device,
                    int64_t batch_size);

}  // namespace dtune
