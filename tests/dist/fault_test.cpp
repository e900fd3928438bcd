// A rank that throws, exits or stalls must bring the whole 2-rank job down, non-zero, within a
// bound (the peers are blocked in an all-reduce). Runs dist_fault_probe under mpirun.
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace {

struct Outcome {
  int exit_code;
  double seconds;
  std::string output;  // stdout and stderr of every rank
};

// Runs the probe under `timeout 60 mpirun -np 2`; 124 means it hung until killed.
Outcome run_probe(const std::string& mode) {
  const std::string log = (std::filesystem::temp_directory_path() / ("dtune_fault_probe_" + mode + ".log")).string();
  const std::string cmd = std::string("timeout 60 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 ") +
                          DTUNE_FAULT_PROBE + " " + mode + " >" + log + " 2>&1";
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system(cmd.c_str());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ifstream in(log);
  std::string output{std::istreambuf_iterator<char>(in), {}};
  std::filesystem::remove(log);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), s, output};
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

// Rank 1 sleeps outside MPI; rank 0's all-reduce outlives the probe's 3 s collective timeout:
// the job ends non-zero within timeout + the census (3 s) + slack, and rank 0's message names the
// collective, the phase and rank 1 as not arrived.
BOOST_AUTO_TEST_CASE(stalled_rank_ends_the_job_by_the_collective_timeout) {
  const Outcome o = run_probe("stall");
  BOOST_TEST(o.exit_code != 0);
  BOOST_TEST(o.exit_code != 124, "the job hung until timeout killed it");
  BOOST_TEST(o.seconds < 3.0 + 30.0);
  BOOST_TEST(o.seconds > 3.0, "ended before the timeout: " << o.output);
  BOOST_TEST(o.output.find("[rank 0] error: MPI all_reduce (probe) did not finish within 3 s (train.collective_timeout") !=
                 std::string::npos,
             o.output);
  BOOST_TEST(o.output.find("rank 1 has not arrived") != std::string::npos, o.output);
  BOOST_TEST(o.output.find("rank 0 was waiting in it (collective #1)") != std::string::npos, o.output);
}
