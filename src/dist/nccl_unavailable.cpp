// make_nccl_communicator for builds without the CUDA/NCCL path: a clear error, not a link failure.
#include "dtune/core/error.h"
#include "dtune/dist/mpi_env.h"

namespace dtune::dist {

namespace {
constexpr const char* kNoNccl =
    "this dtune binary was built without CUDA/NCCL; rebuild on a machine with the CUDA toolkit (see docs/HPC.md) "
    "or set train.device=cpu";
}  // namespace

std::unique_ptr<Communicator> MpiEnv::make_nccl_communicator(int) const { throw Error(kNoNccl); }

std::unique_ptr<Communicator> MpiEnv::make_group_nccl_communicator(int, int) const { throw Error(kNoNccl); }

}  // namespace dtune::dist
