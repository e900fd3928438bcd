// Device selection: one GPU per node-local rank, or the CPU.
#include "dtune/dist/device.h"

#include <sys/resource.h>

#include <cstdlib>
#include <string_view>

#ifdef DTUNE_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "dtune/dist/cuda_check.h"
#endif

#include "dtune/core/error.h"

namespace dtune::dist {

bool cuda_compiled() {
#ifdef DTUNE_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::string cuda_build_info() {
#ifdef DTUNE_HAVE_CUDA
  return dtune::str("CUDA ", CUDART_VERSION / 1000, ".", (CUDART_VERSION % 1000) / 10, ", NCCL ", NCCL_MAJOR,
             ".", NCCL_MINOR, ".", NCCL_PATCH);
#else
  return "";
#endif
}

int cuda_device_count() {
#ifdef DTUNE_HAVE_CUDA
  return static_cast<int>(c10::cuda::device_count());  // 0 without a driver; never throws
#else
  return 0;
#endif
}

std::string device_name(c10::Device device) {
#ifdef DTUNE_HAVE_CUDA
  if (device.is_cuda()) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, device.index()) == cudaSuccess) return prop.name;
    return "cuda";
  }
#endif
  return device.is_cuda() ? "cuda" : "cpu";
}

int compute_capability(c10::Device device) {
#ifdef DTUNE_HAVE_CUDA
  if (device.is_cuda()) {
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device.index()));
    return prop.major * 10 + prop.minor;
  }
#endif
  DTUNE_CHECK(!device.is_cuda(), "compute_capability: this binary was built without CUDA");
  return 0;
}

double peak_memory_gib(c10::Device device) {
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
#ifdef DTUNE_HAVE_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    return static_cast<double>(stats.allocated_bytes[aggregate].peak) / kGiB;
  }
#endif
  rusage ru{};
  DTUNE_CHECK(getrusage(RUSAGE_SELF, &ru) == 0, "getrusage failed");
  return static_cast<double>(ru.ru_maxrss) * 1024.0 / kGiB;  // ru_maxrss is in KiB
}

HostSyncCheck::HostSyncCheck(c10::Device device) {
#ifdef DTUNE_HAVE_CUDA
  const char* env = std::getenv("DTUNE_CUDA_SYNC_CHECK");
  if (device.is_cuda() && env != nullptr && std::string_view(env) == "1") {
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
    active_ = true;
  }
#else
  (void)device;
#endif
}

HostSyncCheck::~HostSyncCheck() {
#ifdef DTUNE_HAVE_CUDA
  if (active_) c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
#endif
}

c10::Device select_device(const DeviceRequest& request, int local_rank, const std::string& option) {
  if (request.kind == DeviceRequest::Kind::kCpu) return c10::Device(c10::kCPU);
  const int n = cuda_device_count();
  const char* why_none = cuda_compiled() ? " (check nvidia-smi and CUDA_VISIBLE_DEVICES); use cpu"
                                         : " (this binary was built without CUDA); use cpu";
  if (n == 0) {
    DTUNE_CHECK(request.kind == DeviceRequest::Kind::kAuto, option, " asks for a GPU but none is visible", why_none);
    return c10::Device(c10::kCPU);
  }
  DTUNE_CHECK(request.index < n, option, " asks for GPU ", request.index, " but ", n, " GPU", n == 1 ? " is" : "s are",
              " visible (0..", n - 1, ")");
  const auto index = static_cast<c10::DeviceIndex>(request.index >= 0 ? request.index : local_rank % n);
#ifdef DTUNE_HAVE_CUDA
  c10::cuda::set_device(index);
#endif
  return c10::Device(c10::kCUDA, index);
}

}  // namespace dtune::dist
