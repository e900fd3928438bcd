// Deadlines of in-flight collectives; see collective_watchdog.h.
#include "dtune/dist/collective_watchdog.h"

#include <chrono>

#include "dtune/core/error.h"

namespace dtune::dist {

CollectiveWatchdog::CollectiveWatchdog(double timeout_s, Clock now) : timeout_s_(timeout_s), now_(std::move(now)) {
  DTUNE_CHECK(timeout_s_ > 0, "train.collective_timeout must be > 0 seconds, got ", timeout_s_);
  if (!now_) {
    now_ = [] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    };
  }
}

CollectiveWatchdog::~CollectiveWatchdog() {
  for (Work& w : in_flight_)
    if (w.release) w.release();
}

void CollectiveWatchdog::launched(std::string what, Probe probe, std::function<void()> release) {
  Work w{std::move(what), now_() + timeout_s_, std::move(probe), std::move(release)};
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_.push_back(std::move(w));
}

std::optional<WatchdogAlarm> CollectiveWatchdog::poll() {
  std::lock_guard<std::mutex> lock(mu_);
  while (!in_flight_.empty()) {
    Work& w = in_flight_.front();
    std::string error;
    const WorkStatus status = w.probe(&error);
    if (status == WorkStatus::kDone) {
      if (w.release) w.release();
      in_flight_.pop_front();
      continue;
    }
    if (status == WorkStatus::kFailed) {
      return WatchdogAlarm{WatchdogAlarm::Kind::kFailed,
                           str("error while ", w.what, " was in flight: ", error)};
    }
    if (now_() > w.deadline) {
      return WatchdogAlarm{WatchdogAlarm::Kind::kTimeout,
                           str(w.what, " did not finish within ", timeout_s_, " s")};
    }
    break;
  }
  return std::nullopt;
}

std::size_t CollectiveWatchdog::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_.size();
}

}  // namespace dtune::dist
