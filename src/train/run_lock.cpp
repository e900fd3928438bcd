// The output folder's run lock; see include/dtune/train/run_lock.h.
#include "dtune/train/run_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "dtune/core/error.h"

namespace dtune {
namespace {

constexpr const char* kLockName = ".dtune-run.lock";

std::string describe(const RunLockHolder& h) {
  return str(h.job_id.empty() ? std::string() : "Slurm job " + h.job_id + ", ", "pid ", h.pid, " on ", h.host,
             ", started ", h.started);
}

nlohmann::json to_json(const RunLockHolder& h) {
  return {{"job_id", h.job_id}, {"host", h.host}, {"pid", h.pid}, {"started", h.started}};
}

// The holder recorded in path; nullopt-like empty host when the file is unreadable or torn.
RunLockHolder read_holder(const std::string& path) {
  RunLockHolder h;
  std::ifstream in(path);
  const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return h;
  h.job_id = j.value("job_id", std::string());
  h.host = j.value("host", std::string());
  h.pid = j.value("pid", 0L);
  h.started = j.value("started", std::string());
  return h;
}

bool write_holder(const std::string& path, const RunLockHolder& me, bool exclusive) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | (exclusive ? O_EXCL : O_TRUNC), 0644);
  if (fd < 0) {
    if (exclusive && errno == EEXIST) return false;
    throw Error(str("cannot create the run lock ", path, ": ", std::strerror(errno), " (check checkpoint.output_dir)"));
  }
  const std::string text = to_json(me).dump() + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  DTUNE_CHECK(ok, "cannot write the run lock ", path, ": ", std::strerror(err));
  return true;
}

}  // namespace

RunLockHolder current_run_holder() {
  RunLockHolder me;
  if (const char* job = std::getenv("SLURM_JOB_ID")) me.job_id = job;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) me.host = host;
  me.pid = static_cast<long>(::getpid());
  const std::time_t now = std::time(nullptr);
  char iso[32];
  std::strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  me.started = iso;
  return me;
}

RunLock RunLock::acquire(const std::string& output_dir, const RunLockHolder& me) {
  std::error_code ec;
  std::filesystem::create_directories(output_dir, ec);
  DTUNE_CHECK(!ec, "cannot create checkpoint.output_dir ", output_dir, ": ", ec.message());
  const std::string path = (std::filesystem::path(output_dir) / kLockName).string();
  if (write_holder(path, me, /*exclusive=*/true)) return RunLock(path);
  const RunLockHolder other = read_holder(path);
  const bool same_host = !other.host.empty() && other.host == me.host;
  const bool gone = same_host && other.pid > 0 && ::kill(static_cast<pid_t>(other.pid), 0) != 0 && errno == ESRCH;
  const bool alive_here = same_host && !gone;
  // This Slurm job, requeued after a crash: its old process is gone (or on another node). A live
  // process of the same job on this host is a second launch inside one job (N one-rank "jobs"
  // from a wrong srun --mpi plugin), never a takeover.
  if (!me.job_id.empty() && other.job_id == me.job_id && !alive_here) {
    write_holder(path, me, /*exclusive=*/false);
    return RunLock(path);
  }
  if (other.host.empty())
    throw Error(str("checkpoint.output_dir ", output_dir, " is locked by another run (", path,
                    " exists but is unreadable). If no other job writes to this folder, delete ", path,
                    "; otherwise use another checkpoint.output_dir"));
  if (gone)
    throw Error(str("checkpoint.output_dir ", output_dir, " holds a stale run lock: ", describe(other),
                    ", a process that is no longer running (it crashed or was killed). If no other job writes to "
                    "this folder, delete ", path, " and start again"));
  const std::string check = other.job_id.empty() ? str("ps -p ", other.pid, " on ", other.host)
                                                 : str("squeue -j ", other.job_id);
  throw Error(str("checkpoint.output_dir ", output_dir, " is in use by another run (", describe(other),
                  "): two runs in one folder would delete each other's checkpoints. Use another "
                  "checkpoint.output_dir, or wait for that run to end. If it has ended without releasing "
                  "the folder (a crashed node: `", check, "` shows nothing), delete ", path));
}

RunLock::RunLock(RunLock&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }

RunLock::~RunLock() {
  if (!path_.empty()) ::unlink(path_.c_str());  // nothing useful to do with a failure here
}

}  // namespace dtune
