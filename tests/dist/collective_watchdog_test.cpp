// Tests src/dist/collective_watchdog.cpp with a hand-driven clock and scripted probes: deadlines
// count from each launch, finished collectives are retired (and released) in launch order, a
// failed probe is reported as such, and the timeout is reported only once a deadline has passed.
#include "dtune/dist/collective_watchdog.h"

#include <boost/test/unit_test.hpp>

#include <string>

#include "dtune/core/error.h"

namespace dtune::dist {
namespace {

struct Fake {
  double now = 100.0;
  CollectiveWatchdog::Clock clock() {
    return [this] { return now; };
  }
};

// A collective whose status the test sets; counts its releases.
struct Work {
  WorkStatus status = WorkStatus::kRunning;
  std::string error;
  int released = 0;
  CollectiveWatchdog::Probe probe() {
    return [this](std::string* e) {
      if (status == WorkStatus::kFailed) *e = error;
      return status;
    };
  }
  std::function<void()> release() {
    return [this] { ++released; };
  }
};

BOOST_AUTO_TEST_CASE(timeout_counts_from_the_launch) {
  Fake clock;
  CollectiveWatchdog dog(30.0, clock.clock());
  Work a;
  dog.launched("all_reduce", a.probe(), a.release());
  clock.now += 29.0;
  BOOST_TEST(!dog.poll().has_value());
  clock.now += 1.5;  // 30.5 s after the launch
  const auto alarm = dog.poll();
  BOOST_REQUIRE(alarm.has_value());
  BOOST_TEST(static_cast<int>(alarm->kind) == static_cast<int>(WatchdogAlarm::Kind::kTimeout));
  BOOST_TEST(alarm->message == "all_reduce did not finish within 30 s");
  BOOST_TEST(a.released == 0);
}

BOOST_AUTO_TEST_CASE(finished_collectives_retire_in_order_and_later_deadlines_wait) {
  Fake clock;
  CollectiveWatchdog dog(10.0, clock.clock());
  Work a, b;
  dog.launched("broadcast", a.probe(), a.release());
  clock.now += 8.0;
  dog.launched("all_reduce", b.probe(), b.release());  // deadline 18 s after a's launch
  clock.now += 4.0;                                       // a is 12 s old but done
  a.status = WorkStatus::kDone;
  BOOST_TEST(!dog.poll().has_value());
  BOOST_TEST(a.released == 1);
  BOOST_TEST(dog.in_flight() == 1u);
  clock.now += 5.0;  // b is 9 s old
  BOOST_TEST(!dog.poll().has_value());
  clock.now += 2.0;  // 11 s
  const auto alarm = dog.poll();
  BOOST_REQUIRE(alarm.has_value());
  BOOST_TEST(alarm->message.find("all_reduce") != std::string::npos);
  b.status = WorkStatus::kDone;
  BOOST_TEST(!dog.poll().has_value());
  BOOST_TEST(b.released == 1);
  BOOST_TEST(a.released == 1);  // once only
  BOOST_TEST(dog.in_flight() == 0u);
}

BOOST_AUTO_TEST_CASE(a_failed_probe_is_reported_as_a_failure_not_a_timeout) {
  Fake clock;
  CollectiveWatchdog dog(10.0, clock.clock());
  Work a;
  a.status = WorkStatus::kFailed;
  a.error = "an illegal memory access was encountered";
  dog.launched("all_reduce", a.probe(), a.release());
  const auto alarm = dog.poll();  // before any deadline
  BOOST_REQUIRE(alarm.has_value());
  BOOST_TEST(static_cast<int>(alarm->kind) == static_cast<int>(WatchdogAlarm::Kind::kFailed));
  BOOST_TEST(alarm->message == "error while all_reduce was in flight: an illegal memory access was encountered");
}

BOOST_AUTO_TEST_CASE(destruction_releases_what_is_still_in_flight) {
  Fake clock;
  Work a, b;
  {
    CollectiveWatchdog dog(10.0, clock.clock());
    dog.launched("x", a.probe(), a.release());
    dog.launched("y", b.probe(), b.release());
  }
  BOOST_TEST(a.released == 1);
  BOOST_TEST(b.released == 1);
  BOOST_CHECK_THROW(CollectiveWatchdog(0.0), Error);
}

}  // namespace
}  // namespace dtune::dist
