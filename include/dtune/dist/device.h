// Which device a rank computes on: CUDA GPU chosen by node-local rank, or the CPU.
#pragma once

#include <string>

#include <c10/core/Device.h>

#include "dtune/core/device_request.h"

namespace dtune::dist {

bool cuda_compiled();             // the CUDA/NCCL path is in this binary
std::string cuda_build_info();    // "CUDA 13.0, NCCL 2.28.9" (compiled-in versions)
int cuda_device_count();          // GPUs visible now; 0 without a driver or a GPU
// Marketing name of a CUDA device ("NVIDIA H200"); "cpu" for the CPU.
std::string device_name(c10::Device device);
// Compute capability of a CUDA device as major * 10 + minor (90 for H100/H200); 0 for the CPU.
int compute_capability(c10::Device device);

// Peak memory of this process on `device` since start, in GiB: on a GPU the tensors' peak
// allocation (the CUDA caching allocator's allocated-bytes peak, as torch.cuda.max_memory_allocated
// reports it); on the CPU the process's peak resident set size.
double peak_memory_gib(c10::Device device);

// Proves that a stretch of GPU work makes the host wait for nothing. While one is alive on a
// CUDA device and DTUNE_CUDA_SYNC_CHECK=1 is set, every operation that would block the host on
// the GPU (item(), nonzero(), a blocking copy, a stream synchronisation) throws instead, naming
// itself (libtorch's CUDA sync debug mode). The trainer holds one around each step's forward and
// backward passes; bench/gpu.sh runs a short training with the variable set. Otherwise (the
// default, or on the CPU) it does nothing.
class HostSyncCheck {
 public:
  explicit HostSyncCheck(c10::Device device);
  ~HostSyncCheck();
  HostSyncCheck(const HostSyncCheck&) = delete;
  HostSyncCheck& operator=(const HostSyncCheck&) = delete;

 private:
  bool active_ = false;
};

// The device of a request (parse_device_request, core/device_request.h: train.device, generate
// --device): auto = a GPU if one is visible, else the CPU; cuda without an index = GPU
// local_rank % device count; cuda:N = GPU N. Sets a GPU as the current device. Throws
// dtune::Error naming `option` when a GPU is requested and none (or not that one) is visible.
c10::Device select_device(const DeviceRequest& request, int local_rank, const std::string& option);

}  // namespace dtune::dist
