// run_guarded: report, then bring the job down; see job_guard.h.
#include "dtune/dist/job_guard.h"

#include <exception>
#include <string>

#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/dist/mpi_env.h"

namespace dtune::dist {

int run_guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const Error& e) {
    log::error(e.what());
  } catch (const std::exception& e) {
    log::error(std::string("internal error: ") + e.what() +
               "\n  (this is a dtune bug: please report it with the command you ran)");
  }
  abort_job(kExitError);
  return kExitError;
}

}  // namespace dtune::dist
