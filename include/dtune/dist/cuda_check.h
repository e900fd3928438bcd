// CUDA_CHECK / NCCL_CHECK: throw dtune::Error naming the call, file, line and the library's
// message. Only for files compiled when DTUNE_HAVE_CUDA is set.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "dtune/core/error.h"

#define CUDA_CHECK(call)                                                                         \
  do {                                                                                           \
    cudaError_t dtune_cuda_rc_ = (call);                                                         \
    if (dtune_cuda_rc_ != cudaSuccess)                                                           \
      throw ::dtune::Error(::dtune::str("CUDA call failed: ", #call, " at ", __FILE__, ":", __LINE__, \
                                        ": ", cudaGetErrorString(dtune_cuda_rc_),                \
                                        "\n  hint: check nvidia-smi, CUDA_VISIBLE_DEVICES and "  \
                                        "the driver version"));                                  \
  } while (0)

#define NCCL_CHECK(call)                                                                         \
  do {                                                                                           \
    ncclResult_t dtune_nccl_rc_ = (call);                                                        \
    if (dtune_nccl_rc_ != ncclSuccess)                                                           \
      throw ::dtune::Error(::dtune::str("NCCL call failed: ", #call, " at ", __FILE__, ":", __LINE__, \
                                        ": ", ncclGetErrorString(dtune_nccl_rc_),                \
                                        "\n  hint: rerun with NCCL_DEBUG=INFO; see docs/HPC.md " \
                                        "(interfaces, InfiniBand, timeouts)"));                  \
  } while (0)
