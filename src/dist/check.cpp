// Turns a failed MPI return code into a dtune::Error with the call site and MPI's message.
#include "dtune/dist/check.h"

#include <mpi.h>

#include "dtune/core/error.h"

namespace dtune::dist {

void throw_mpi_error(int code, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
  throw Error(dtune::str("MPI call failed: ", call, " at ", file, ":", line, ": ", std::string(text, len),
                  " (code ", code, ")\n  hint: a peer rank may have died; check the other ranks' "
                  "output above and the launcher's (mpirun/srun) messages"));
}

}  // namespace dtune::dist
