// run_guarded: report, then bring the job down; see job_guard.h.
#include "dtune/dist/job_guard.h"

#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/dist/mpi_env.h"

namespace dtune::dist {

namespace {

std::mutex cleanups_mu;
std::vector<std::function<void()>>& cleanups() {
  static std::vector<std::function<void()>> list;
  return list;
}

}  // namespace

void run_after_error_report(std::function<void()> cleanup) {
  std::lock_guard<std::mutex> lock(cleanups_mu);
  cleanups().push_back(std::move(cleanup));
}

int run_guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const Error& e) {
    log::error(e.what());
  } catch (const std::exception& e) {
    log::error(std::string("internal error: ") + e.what() +
               "\n  (this is a dtune bug: please report it with the command you ran)");
  }
  std::vector<std::function<void()>> pending;
  {
    std::lock_guard<std::mutex> lock(cleanups_mu);
    pending.swap(cleanups());
  }
  for (auto& cleanup : pending) cleanup();
  abort_job(kExitError);
  return kExitError;
}

}  // namespace dtune::dist
