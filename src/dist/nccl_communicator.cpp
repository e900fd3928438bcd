// The NCCL communicator over CUDA tensors: collectives run on the current torch CUDA stream; a
// watchdog thread aborts the job when a collective outlives its timeout or NCCL reports an
// asynchronous error (a dead peer), so a failure never turns into a hang.
#include <mpi.h>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

#include "dtune/core/log.h"
#include "dtune/dist/check.h"
#include "dtune/dist/cuda_check.h"
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

using Clock = std::chrono::steady_clock;

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(int rank, int world, int device, double timeout_s)
      : rank_(rank), world_(world), device_(device), timeout_(timeout_s) {
    CUDA_CHECK(cudaSetDevice(device_));
    ncclUniqueId id;
    if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD));
    NCCL_CHECK(ncclCommInitRank(&comm_, world_, id, rank_));
    watchdog_ = std::thread([this] { watch(); });
  }

  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    for (auto& p : pending_) cudaEventDestroy(p.event);
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend() const override { return "nccl"; }

  void all_reduce(at::Tensor& tensor, ReduceOp op) override {
    check_cuda_contiguous(tensor, "all_reduce");
    if (tensor.numel() == 0) return;
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_).stream();
    NCCL_CHECK(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()),
                             nccl_type(tensor.scalar_type()), nccl_op(op), comm_, stream));
    track(stream, "all_reduce");
  }

  void broadcast(at::Tensor& tensor, int root) override {
    check_cuda_contiguous(tensor, "broadcast");
    DTUNE_CHECK(root >= 0 && root < world_, "broadcast root ", root, " out of range");
    if (tensor.numel() == 0) return;
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_).stream();
    NCCL_CHECK(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()),
                             nccl_type(tensor.scalar_type()), root, comm_, stream));
    track(stream, "broadcast");
  }

  void barrier() override { host_.barrier(); }
  double all_reduce_scalar(double value, ReduceOp op) override { return host_.all_reduce_scalar(value, op); }
  void broadcast_string(std::string& bytes, int root) override { host_.broadcast_string(bytes, root); }

 private:
  struct Pending {
    cudaEvent_t event;
    Clock::time_point deadline;
    const char* what;
  };

  void check_cuda_contiguous(const at::Tensor& t, const char* what) const {
    DTUNE_CHECK(t.defined() && t.is_cuda(), what, " (NCCL backend) needs a CUDA tensor");
    DTUNE_CHECK(t.get_device() == device_, what, ": tensor on cuda:", t.get_device(),
                " but this rank's communicator is on cuda:", device_);
    DTUNE_CHECK(t.is_contiguous(), what, " needs a contiguous tensor");
  }

  // Records an event after the collective; the watchdog retires it or aborts the job.
  void track(cudaStream_t stream, const char* what) {
    cudaEvent_t ev;
    CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(ev, stream));
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(timeout_));
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back({ev, deadline, what});
  }

  [[noreturn]] void fail(const std::string& why) {
    log::error(why + "\n  hint: a peer rank died or the network stalled; see docs/HPC.md "
                     "(NCCL troubleshooting). Aborting the job.");
    ncclCommAbort(comm_);
    comm_ = nullptr;
    MPI_Abort(MPI_COMM_WORLD, kExitError);
    std::_Exit(kExitError);
  }

  void watch() {
    if (cudaSetDevice(device_) != cudaSuccess) return;
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      ncclResult_t async = ncclSuccess;
      if (ncclCommGetAsyncError(comm_, &async) == ncclSuccess && async != ncclSuccess &&
          async != ncclInProgress) {
        fail(dtune::str("NCCL asynchronous error: ", ncclGetErrorString(async)));
      }
      while (!pending_.empty()) {
        Pending& p = pending_.front();
        const cudaError_t q = cudaEventQuery(p.event);
        if (q == cudaSuccess) {
          cudaEventDestroy(p.event);
          pending_.pop_front();
          continue;
        }
        if (q != cudaErrorNotReady) fail(dtune::str("CUDA error while waiting for NCCL ", p.what, ": ", cudaGetErrorString(q)));
        if (Clock::now() > p.deadline)
          fail(dtune::str("NCCL ", p.what, " did not finish within ", timeout_, " s (train.nccl_timeout)"));
        break;
      }
    }
  }

  int rank_, world_, device_;
  double timeout_;
  ncclComm_t comm_ = nullptr;
  MpiCommunicator host_;  // small host-side collectives
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  bool stop_ = false;
  std::thread watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> MpiEnv::make_nccl_communicator(int device_index, double timeout_s) const {
  return std::make_unique<NcclCommunicator>(rank_, world_size_, device_index, timeout_s);
}

}  // namespace dtune::dist
