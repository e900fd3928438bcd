// `dtune info`: what this binary was built with and what it sees at run time.
#include <mpi.h>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <cstdio>
#include <cstring>

#include "dtune/cli/commands.h"
#include "dtune/dist/device.h"

namespace dtune::cli {

int run_info(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf("usage: dtune info\n\nPrints the dtune version, libtorch version, MPI library, "
                  "whether the CUDA/NCCL path was compiled in, and the GPUs visible now.\n");
      return 0;
    }
  }
  char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi_version, &len);  // legal before MPI_Init
  std::string mpi(mpi_version, static_cast<size_t>(len));
  if (auto nl = mpi.find('\n'); nl != std::string::npos) mpi.resize(nl);
  std::printf("dtune        %s\n", DTUNE_VERSION);
  std::printf("libtorch     %s\n", TORCH_VERSION);
  std::printf("MPI          %s\n", mpi.c_str());
  std::printf("CUDA/NCCL    %s\n", dist::cuda_compiled() ? dist::cuda_build_info().c_str() : "not compiled in");
  std::printf("GPUs visible %d\n", dist::cuda_device_count());
  std::printf("CPU threads  %d (intra-op)\n", at::get_num_threads());
  return 0;
}

}  // namespace dtune::cli
