// The timeout logic of the NCCL watchdog, without CUDA or NCCL so that it is tested on any
// machine: collectives in flight, in launch order, each with a deadline; a poll retires the
// finished ones and reports the first that failed or outlived its deadline.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace dtune::dist {

// What a probe reports about one collective (NCCL: cudaEventQuery on an event recorded after it).
enum class WorkStatus { kRunning, kDone, kFailed };

struct WatchdogAlarm {
  enum class Kind {
    kTimeout,  // a collective outlived its deadline: a peer died or the network stalled
    kFailed,   // its probe failed; for a CUDA event a sticky error of ANY earlier kernel shows here
  };
  Kind kind;
  std::string message;  // names the collective, the timeout or the probe's error
};

class CollectiveWatchdog {
 public:
  using Clock = std::function<double()>;  // monotonic seconds
  // Probe: the collective's status; on kFailed it writes the reason to *error.
  using Probe = std::function<WorkStatus(std::string* error)>;

  // timeout_s > 0 bounds every collective from its launch. now defaults to std::chrono::steady_clock.
  explicit CollectiveWatchdog(double timeout_s, Clock now = {});

  // Records a collective launched now, e.g. what = "all_reduce". release runs once when the
  // collective is retired (done) or the watchdog is destroyed (NCCL: cudaEventDestroy).
  void launched(std::string what, Probe probe, std::function<void()> release = {});

  // Retires finished collectives in launch order and stops at the first one still running (a
  // later one on the same stream cannot have finished before it). Returns an alarm when that
  // collective is past its deadline or a probe failed; nullopt when all is well.
  std::optional<WatchdogAlarm> poll();

  std::size_t in_flight() const;
  double timeout_s() const { return timeout_s_; }

  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

 private:
  struct Work {
    std::string what;
    double deadline;
    Probe probe;
    std::function<void()> release;
  };
  double timeout_s_;
  Clock now_;
  mutable std::mutex mu_;  // launched() runs on the training thread, poll() on the watchdog's
  std::deque<Work> in_flight_;
};

}  // namespace dtune::dist
