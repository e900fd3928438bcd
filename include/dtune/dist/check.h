// Return-code checks for MPI, CUDA and NCCL calls: each failure throws dtune::Error naming the
// call, the source file and line, the library's own message, and a hint on what to look at.
#pragma once

#include <string>

namespace dtune::dist {

[[noreturn]] void throw_mpi_error(int code, const char* call, const char* file, int line);

}  // namespace dtune::dist

#define MPI_CHECK(call)                                                              \
  do {                                                                               \
    int dtune_mpi_rc_ = (call);                                                      \
    if (dtune_mpi_rc_ != 0) ::dtune::dist::throw_mpi_error(dtune_mpi_rc_, #call, __FILE__, __LINE__); \
  } while (0)
