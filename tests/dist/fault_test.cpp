// A rank that throws or exits must bring the whole 2-rank job down, non-zero, within a bound
// (the peers are blocked in an all-reduce). Runs dist_fault_probe under mpirun.
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <string>

namespace {

struct Outcome {
  int exit_code;
  double seconds;
};

// Runs the probe under `timeout 60 mpirun -np 2`; 124 means it hung until killed.
Outcome run_probe(const std::string& mode) {
  const std::string cmd = std::string("timeout 60 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 ") +
                          DTUNE_FAULT_PROBE + " " + mode + " >/dev/null 2>&1";
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system(cmd.c_str());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), s};
}

}  // namespace

BOOST_AUTO_TEST_CASE(healthy_job_exits_zero) {
  const Outcome o = run_probe("ok");
  BOOST_TEST(o.exit_code == 0);
}

BOOST_AUTO_TEST_CASE(throwing_rank_brings_the_job_down) {
  const Outcome o = run_probe("throw");
  BOOST_TEST(o.exit_code != 0);
  BOOST_TEST(o.exit_code != 124, "the job hung until timeout killed it");
  BOOST_TEST(o.seconds < 30.0);
}

BOOST_AUTO_TEST_CASE(exiting_rank_brings_the_job_down) {
  const Outcome o = run_probe("exit");
  BOOST_TEST(o.exit_code != 0);
  BOOST_TEST(o.exit_code != 124, "the job hung until timeout killed it");
  BOOST_TEST(o.seconds < 30.0);
}
