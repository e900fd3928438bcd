// The one interface through which ranks talk. Implementations: single process, MPI over CPU
// tensors, NCCL over CUDA tensors. Training code receives one Communicator and never calls MPI
// or NCCL directly; model code never sees one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace at {
class Tensor;
}

namespace dtune::dist {

enum class ReduceOp { kSum, kAvg, kMax };

// A collective started by Communicator::start_all_gather. wait() returns once its output may be
// read in program order: MPI, when the data is there (MPI_Wait); NCCL, once the current CUDA
// stream waits for the gather (an event; the host does not block). Destroying a handle that was
// never waited on waits first. Throws dtune::Error on a backend failure.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;  // "single" | "mpi" | "nccl"

  // In-place all-reduce of a contiguous tensor (the flat gradient bucket).
  // REQUIRES: called on every rank with the same numel and dtype; device as the backend needs
  // (CPU for mpi, CUDA for nccl). kMax is for flags and integer counters.
  virtual void all_reduce(at::Tensor& tensor, ReduceOp op) = 0;
  // In-place broadcast of a contiguous tensor from root. REQUIRES: called on every rank.
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  // All-gather of equal-sized pieces: output (world_size * n) holds rank r's input (n) at
  // [r * n, (r + 1) * n), as MPI_Allgather / ncclAllGather. Any dtype (bytes are moved).
  // REQUIRES: called on every rank with the same n and dtype; input and output contiguous, not
  // overlapping, on the backend's device (CPU for mpi, CUDA for nccl).
  virtual void all_gather(const at::Tensor& input, at::Tensor& output) = 0;
  // all_gather started now and finished by the handle's wait(), so that it overlaps the work
  // queued in between: NCCL runs it on a side CUDA stream (after the work queued so far on the
  // current stream), MPI as MPI_Iallgather (progress mostly inside MPI calls on CPU, so there
  // the overlap is small). input and output must stay alive and untouched until wait(). The
  // default runs all_gather at once.
  virtual std::unique_ptr<PendingCollective> start_all_gather(const at::Tensor& input, at::Tensor& output);
  virtual void barrier() = 0;

  // Seconds the last all_reduce took on the device, from a CUDA event recorded on its stream
  // just before it to one just after (cudaEventElapsedTime; it includes waiting for the slowest
  // rank to join, as an MPI all-reduce's wall time does). nullopt for host backends (their
  // all_reduce blocks, so the caller's own clock is exact), before the first all_reduce, and while
  // the end event has not completed: it never blocks, so read it after the host has waited on a
  // result of the all-reduce (the trainer reads it after the gradient norm's item()).
  virtual std::optional<double> device_all_reduce_seconds() { return std::nullopt; }

  // Host-side helpers (always over the CPU path; for counts, flags and small state).
  virtual double all_reduce_scalar(double value, ReduceOp op) = 0;
  bool any(bool flag) { return all_reduce_scalar(flag ? 1.0 : 0.0, ReduceOp::kMax) > 0.0; }
  virtual void broadcast_string(std::string& bytes, int root) = 0;

  // What the run is doing ("setup", "step 12", "eval after step 10", "checkpoint at step 10"),
  // set by the trainer. A collective that outlives train.collective_timeout names it. Rank-local
  // (no communication); every rank sets the same phases in the same order.
  virtual void set_phase(std::string phase) { phase_ = std::move(phase); }
  const std::string& phase() const { return phase_; }

 protected:
  std::string phase_ = "setup";
};

std::unique_ptr<Communicator> make_single_process_communicator();

// Throws dtune::Error unless output is (world_size * input.numel()) of input's dtype and device,
// both contiguous. Shared by the implementations of all_gather.
void check_all_gather_args(const at::Tensor& input, const at::Tensor& output, int world_size);

}  // namespace dtune::dist
