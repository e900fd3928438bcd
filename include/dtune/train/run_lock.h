// One run per output folder: an exclusive lock file in checkpoint.output_dir, taken by rank 0 at
// the start of `dtune train` and released when the run ends (normally, on an error it catches,
// or after checkpointing on preemption). Two jobs on one folder would delete each other's
// checkpoints, prune each other's keep_last and overwrite metrics.jsonl and adapter/.
#pragma once

#include <string>

namespace dtune {

// Who holds a lock: read from and written to output_dir/.dtune-run.lock as JSON.
struct RunLockHolder {
  std::string job_id;  // SLURM_JOB_ID, "" outside Slurm
  std::string host;    // gethostname()
  long pid = 0;        // the rank-0 process
  std::string started; // UTC, ISO 8601
};

// The holder describing this process (job id from SLURM_JOB_ID).
RunLockHolder current_run_holder();

class RunLock {
 public:
  // Creates output_dir (if needed) and the lock file with O_CREAT | O_EXCL. An existing lock of
  // the same Slurm job whose process is gone or on another host (a requeue of this job after a
  // crash) is taken over; a live process of the same job on this host is not. Any other existing
  // lock is an error naming its holder and the fix; one whose process is gone (same host, pid no
  // longer alive) is reported as stale, never silently stolen. Throws dtune::Error.
  static RunLock acquire(const std::string& output_dir, const RunLockHolder& me = current_run_holder());

  RunLock(RunLock&& other) noexcept;
  RunLock& operator=(RunLock&&) = delete;
  ~RunLock();  // removes the lock file if this object holds it
  const std::string& path() const { return path_; }

 private:
  explicit RunLock(std::string path) : path_(std::move(path)) {}
  std::string path_;  // empty when moved from
};

}  // namespace dtune
