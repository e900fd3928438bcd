// The NCCL communicator over CUDA tensors: collectives run on the current torch CUDA stream; a
// watchdog thread ends the job when a collective outlives its timeout or NCCL reports an
// asynchronous error (a dead peer), so a failure never turns into a hang. The watchdog never
// calls MPI (MPI runs FUNNELED: only the main thread may): as PyTorch's ProcessGroupNCCL
// watchdog does, it aborts the NCCL communicator, prints why and ends the process, and the
// launcher (mpirun, srun) then ends the other ranks.
#include <mpi.h>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "dtune/core/log.h"
#include "dtune/dist/check.h"
#include "dtune/dist/collective_watchdog.h"
#include "dtune/dist/cuda_check.h"
#include "dtune/dist/job_guard.h"
#include "dtune/dist/mpi_communicator.h"
#include "dtune/dist/mpi_env.h"

namespace dtune::dist {
namespace {

ncclDataType_t nccl_type(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return ncclFloat32;
    case c10::ScalarType::Half: return ncclFloat16;
    case c10::ScalarType::BFloat16: return ncclBfloat16;
    case c10::ScalarType::Double: return ncclFloat64;
    case c10::ScalarType::Int: return ncclInt32;
    case c10::ScalarType::Long: return ncclInt64;
    case c10::ScalarType::Byte: return ncclUint8;
    case c10::ScalarType::Char: return ncclInt8;
    default: throw Error(dtune::str("NCCL backend: dtype ", t, " is not supported"));
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kAvg: return ncclAvg;
    case ReduceOp::kMax: return ncclMax;
  }
  return ncclSum;
}

constexpr const char* kPeerHint =
    "\n  hint: a peer rank died or the network stalled; see docs/HPC.md (NCCL troubleshooting).";
constexpr const char* kStickyHint =
    "\n  hint: CUDA errors are sticky, so this one may come from any kernel queued before the "
    "collective, not from NCCL; rerun with CUDA_LAUNCH_BLOCKING=1 to name the kernel.";

// A CUDA error left pending on this thread by an earlier call or kernel launch would surface in
// the collective (NCCL reads cudaGetLastError after its own launches) as if NCCL had failed:
// report it as what it is, and clear it. A sticky error (a faulted kernel) still fails the
// collective, whose message then says it need not be NCCL's.
void clear_pending_cuda_error(const char* what) {
  const cudaError_t pending = cudaGetLastError();
  if (pending != cudaSuccess) {
    const std::string msg = str("before NCCL ", what, ", a CUDA error was pending from an earlier kernel or call "
                                "(not NCCL): ", cudaGetErrorName(pending), ": ", cudaGetErrorString(pending), "; cleared");
    std::fprintf(stderr, "[rank %d] warning: %s\n", log::rank(), msg.c_str());  // every rank (log::warn: rank 0)
  }
}

// NCCL_CHECK for a collective launch; ncclUnhandledCudaError names the CUDA error behind it.
void check_nccl_launch(ncclResult_t rc, const char* what) {
  if (rc == ncclSuccess) return;
  const cudaError_t cuda = cudaGetLastError();
  throw Error(str("NCCL ", what, " failed to launch: ", ncclGetErrorString(rc),
                  rc == ncclUnhandledCudaError ? str(" (CUDA: ", cudaGetErrorName(cuda), ": ", cudaGetErrorString(cuda), ")",
                                                     kStickyHint)
                                               : std::string("\n  hint: rerun with NCCL_DEBUG=INFO; see docs/HPC.md")));
}

// A new event recorded on stream (after the work queued so far); the caller destroys it.
cudaEvent_t record_event(cudaStream_t stream) {
  cudaEvent_t ev;
  CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  const cudaError_t recorded = cudaEventRecord(ev, stream);
  if (recorded != cudaSuccess) {
    cudaEventDestroy(ev);  // best effort: the error below is what matters
    CUDA_CHECK(recorded);
  }
  return ev;
}

// `waiter` waits (on the device) for the work queued so far on `waited`.
void stream_wait(cudaStream_t waiter, cudaStream_t waited) {
  cudaEvent_t ev;
  CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  cudaError_t rc = cudaEventRecord(ev, waited);
  if (rc == cudaSuccess) rc = cudaStreamWaitEvent(waiter, ev, 0);
  cudaEventDestroy(ev);  // legal once the wait is queued; its return code changes nothing
  CUDA_CHECK(rc);
}

// A gather on the side stream: wait() queues a wait for its event on the current stream.
class NcclPendingGather final : public PendingCollective {
 public:
  NcclPendingGather(cudaEvent_t done, int device) : done_(done), device_(device) {}
  ~NcclPendingGather() override {
    if (done_ == nullptr) return;
    // Never waited on: the current stream still must not run ahead of the gather (its buffer
    // may be freed and reused next). A destructor cannot throw.
    cudaStreamWaitEvent(c10::cuda::getCurrentCUDAStream(device_).stream(), done_, 0);
    cudaEventDestroy(done_);
  }
  void wait() override {
    if (done_ == nullptr) return;
    const cudaError_t rc = cudaStreamWaitEvent(c10::cuda::getCurrentCUDAStream(device_).stream(), done_, 0);
    cudaEventDestroy(done_);
    done_ = nullptr;
    CUDA_CHECK(rc);
  }

 private:
  cudaEvent_t done_;
  int device_;
};

class NcclCommunicator final : public Communicator {
 public:
  // NCCL over the ranks of comm (MPI_COMM_WORLD or a shard group); the unique id travels over
  // comm, bounded as every host collective. owns_comm: comm is freed with this communicator (a
  // group split off the world).
  NcclCommunicator(MPI_Comm comm, bool owns_comm, int device, double timeout_s)
      : host_(timeout_s, comm, owns_comm), rank_(host_.rank()), world_(host_.world_size()), device_(device),
        watchdog_(timeout_s) {
    CUDA_CHECK(cudaSetDevice(device_));
    ncclUniqueId id;
    if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    // Over the bounded host path: a rank that never gets here is named (mpi_communicator.h).
    std::string id_bytes = rank_ == 0 ? std::string(reinterpret_cast<const char*>(&id), sizeof(id)) : std::string();
    host_.set_phase("setup: NCCL unique id");
    host_.broadcast_string(id_bytes, 0);
    DTUNE_CHECK(id_bytes.size() == sizeof(id), "internal: NCCL unique id of ", id_bytes.size(), " bytes, expected ",
                sizeof(id));
    std::memcpy(&id, id_bytes.data(), sizeof(id));
    // Not bounded by dtune: NCCL's own bootstrap connects the ranks here (every rank has just
    // passed the broadcast above, so a missing rank is named there).
    NCCL_CHECK(ncclCommInitRank(&comm_, world_, id, rank_));
    // comm_ is written only here, before the watchdog thread starts, and read by both threads.
    watchdog_thread_ = std::thread([this] { watch(); });
  }
  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (watchdog_thread_.joinable()) watchdog_thread_.join();
    if (std::uncaught_exceptions() > 0) {
      // An error is unwinding the stack: ncclCommDestroy would wait for collectives that peers
      // may never join (a hang that hides the error). Abort instead, once run_guarded has
      // printed the error.
      ncclComm_t comm = comm_;
      run_after_error_report([comm] {
        const ncclResult_t rc = ncclCommAbort(comm);
        if (rc != ncclSuccess) log::error(str("ncclCommAbort: ", ncclGetErrorString(rc)));
      });
      return;
    }
    const ncclResult_t rc = ncclCommDestroy(comm_);
    if (rc != ncclSuccess) log::warn(str("ncclCommDestroy: ", ncclGetErrorString(rc)));  // a destructor cannot throw
    if (reduce_start_ != nullptr) cudaEventDestroy(reduce_start_);  // return codes: nothing to do here
    if (reduce_end_ != nullptr) cudaEventDestroy(reduce_end_);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend() const override { return "nccl"; }

  void all_reduce(at::Tensor& tensor, ReduceOp op) override {
    check_cuda_contiguous(tensor, "all_reduce");
    if (tensor.numel() == 0) return;
    clear_pending_cuda_error("all_reduce");
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_).stream();
    if (reduce_start_ == nullptr) {  // timing events, made once (device_all_reduce_seconds)
      CUDA_CHECK(cudaEventCreate(&reduce_start_));
      CUDA_CHECK(cudaEventCreate(&reduce_end_));
    }
    CUDA_CHECK(cudaEventRecord(reduce_start_, stream));
    check_nccl_launch(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()),
                                    nccl_type(tensor.scalar_type()), nccl_op(op), comm_, stream),
                      "all_reduce");
    CUDA_CHECK(cudaEventRecord(reduce_end_, stream));
    timed_reduce_ = true;
    track(stream, "all_reduce");
  }

  std::optional<double> device_all_reduce_seconds() override {
    if (!timed_reduce_) return std::nullopt;
    const cudaError_t done = cudaEventQuery(reduce_end_);
    if (done == cudaErrorNotReady) return std::nullopt;
    CUDA_CHECK(done);
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, reduce_start_, reduce_end_));
    return static_cast<double>(ms) / 1e3;
  }

  void broadcast(at::Tensor& tensor, int root) override {
    check_cuda_contiguous(tensor, "broadcast");
    DTUNE_CHECK(root >= 0 && root < world_, "broadcast root ", root, " out of range");
    if (tensor.numel() == 0) return;
    clear_pending_cuda_error("broadcast");
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_).stream();
    check_nccl_launch(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()),
                                    nccl_type(tensor.scalar_type()), root, comm_, stream),
                      "broadcast");
    track(stream, "broadcast");
  }

  void all_gather(const at::Tensor& input, at::Tensor& output) override {
    check_cuda_contiguous(input, "all_gather");
    check_cuda_contiguous(output, "all_gather");
    check_all_gather_args(input, output, world_);
    if (input.numel() == 0) return;
    clear_pending_cuda_error("all_gather");
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_).stream();
    check_nccl_launch(ncclAllGather(input.data_ptr(), output.data_ptr(), static_cast<size_t>(input.numel()),
                                    nccl_type(input.scalar_type()), comm_, stream),
                      "all_gather");
    track(stream, "all_gather");
  }
  // ncclAllGather on a side stream that first waits for the work queued so far on the current
  // stream (the output may reuse memory that work still reads); wait() makes the then-current
  // stream wait for the gather, without blocking the host.
  std::unique_ptr<PendingCollective> start_all_gather(const at::Tensor& input, at::Tensor& output) override {
    check_cuda_contiguous(input, "all_gather");
    check_cuda_contiguous(output, "all_gather");
    check_all_gather_args(input, output, world_);
    if (input.numel() == 0) return std::make_unique<NcclPendingGather>(nullptr, device_);
    if (!side_) side_ = c10::cuda::getStreamFromPool(/*isHighPriority=*/true, static_cast<c10::DeviceIndex>(device_));
    const cudaStream_t compute = c10::cuda::getCurrentCUDAStream(device_).stream();
    const cudaStream_t side = side_->stream();
    stream_wait(side, compute);
    clear_pending_cuda_error("all_gather");
    check_nccl_launch(ncclAllGather(input.data_ptr(), output.data_ptr(), static_cast<size_t>(input.numel()),
                                    nccl_type(input.scalar_type()), comm_, side),
                      "all_gather");
    track(side, "all_gather");
    return std::make_unique<NcclPendingGather>(record_event(side), device_);
  }
  void barrier() override { host_.barrier(); }
  double all_reduce_scalar(double value, ReduceOp op) override { return host_.all_reduce_scalar(value, op); }
  void broadcast_string(std::string& bytes, int root) override { host_.broadcast_string(bytes, root); }
  void set_phase(std::string phase) override {
    host_.set_phase(phase);
    Communicator::set_phase(std::move(phase));
  }

 private:
  void check_cuda_contiguous(const at::Tensor& t, const char* what) const {
    DTUNE_CHECK(t.defined() && t.is_cuda(), what, " (NCCL backend) needs a CUDA tensor");
    DTUNE_CHECK(t.get_device() == device_, what, ": tensor on cuda:", t.get_device(),
                " but this rank's communicator is on cuda:", device_);
    DTUNE_CHECK(t.is_contiguous(), what, " needs a contiguous tensor");
  }

  // Records an event after the collective; the watchdog retires it or ends the job.
  void track(cudaStream_t stream, const char* what) {
    cudaEvent_t ev = record_event(stream);
    watchdog_.launched(
        str("NCCL ", what, " (", phase_, ")"),
        [ev](std::string* error) {
          const cudaError_t q = cudaEventQuery(ev);
          if (q == cudaSuccess) return WorkStatus::kDone;
          if (q == cudaErrorNotReady) return WorkStatus::kRunning;
          *error = str("CUDA ", cudaGetErrorName(q), ": ", cudaGetErrorString(q));
          return WorkStatus::kFailed;
        },
        [ev] { cudaEventDestroy(ev); });  // its return code: nothing to do with a failure here
  }

  // On the watchdog thread: abort NCCL so no rank waits on this one, print why, end the process.
  [[noreturn]] void fail(const std::string& why, const char* hint) {
    log::error(why + hint + " Ending this rank; the launcher ends the others.");
    const ncclResult_t rc = ncclCommAbort(comm_);
    if (rc != ncclSuccess) log::error(str("ncclCommAbort: ", ncclGetErrorString(rc)));
    std::fflush(nullptr);
    std::_Exit(kExitError);
  }

  void watch() {
    const cudaError_t set = cudaSetDevice(device_);
    if (set != cudaSuccess) {
      fail(str("NCCL watchdog: cudaSetDevice(", device_, "): ", cudaGetErrorString(set)),
           "\n  hint: check nvidia-smi and CUDA_VISIBLE_DEVICES.");
    }
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      ncclResult_t async = ncclSuccess;
      const ncclResult_t got = ncclCommGetAsyncError(comm_, &async);
      if (got != ncclSuccess) fail(str("ncclCommGetAsyncError: ", ncclGetErrorString(got)), kPeerHint);
      if (async != ncclSuccess && async != ncclInProgress)
        fail(str("NCCL asynchronous error: ", ncclGetErrorString(async)), kPeerHint);
      if (const auto alarm = watchdog_.poll()) {
        if (alarm->kind == WatchdogAlarm::Kind::kTimeout) {
          fail(alarm->message + " (train.collective_timeout; NCCL cannot tell which rank had not arrived: the host "
                                 "collectives before it name a rank that never got there)",
               kPeerHint);
        }
        fail(alarm->message, kStickyHint);
      }
    }
  }

  MpiCommunicator host_;  // small host-side collectives, over the same ranks
  std::optional<c10::cuda::CUDAStream> side_;  // start_all_gather's stream, made on first use
  int rank_, world_, device_;
  ncclComm_t comm_ = nullptr;
  // Around the last all_reduce, for device_all_reduce_seconds (timing enabled); made on first use.
  cudaEvent_t reduce_start_ = nullptr;
  cudaEvent_t reduce_end_ = nullptr;
  bool timed_reduce_ = false;
  CollectiveWatchdog watchdog_;
  std::mutex mu_;  // guards stop_
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread watchdog_thread_;
};

}  // namespace

std::unique_ptr<Communicator> MpiEnv::make_nccl_communicator(int device_index) const {
  return std::make_unique<NcclCommunicator>(MPI_COMM_WORLD, /*owns_comm=*/false, device_index, collective_timeout_s_);
}

std::unique_ptr<Communicator> MpiEnv::make_group_nccl_communicator(int group_size, int device_index) const {
  return std::make_unique<NcclCommunicator>(split_world_into_groups(group_size), /*owns_comm=*/true, device_index,
                                            collective_timeout_s_);
}

}  // namespace dtune::dist
