// Tests src/dist/job_guard.cpp without MPI peers: run_guarded reports an error and returns
// kExitError, and the cleanups registered while the error unwound run after the report (the
// NCCL communicator's ncclCommAbort), once.
#include "dtune/dist/job_guard.h"

#include <boost/test/unit_test.hpp>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "dtune/core/error.h"

namespace dtune::dist {
namespace {

// Runs fn with stderr going to a file; returns what was written.
template <typename Fn>
std::string capture_stderr(Fn fn) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("dtune_job_guard_" + std::to_string(::getpid()) + ".txt")).string();
  std::fflush(stderr);
  const int saved = ::dup(2);
  BOOST_REQUIRE(saved >= 0);
  std::FILE* f = std::fopen(path.c_str(), "w");
  BOOST_REQUIRE(f != nullptr);
  ::dup2(::fileno(f), 2);
  fn();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(f);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(path);
  return text.str();
}

struct RegistersOnUnwind {
  int* runs;
  ~RegistersOnUnwind() {
    int* r = runs;
    run_after_error_report([r] {
      ++*r;
      std::fputs("CLEANUP\n", stderr);
    });
  }
};

BOOST_AUTO_TEST_CASE(cleanup_runs_after_the_error_is_reported_and_once) {
  int runs = 0, rc = 0;
  const std::string err = capture_stderr([&] {
    rc = run_guarded([&]() -> int {
      RegistersOnUnwind guard{&runs};
      throw Error("the data file is gone");
    });
  });
  BOOST_TEST(rc == kExitError);
  BOOST_TEST(runs == 1);
  const auto report = err.find("the data file is gone"), cleanup = err.find("CLEANUP");
  BOOST_REQUIRE(report != std::string::npos);
  BOOST_REQUIRE(cleanup != std::string::npos);
  BOOST_TEST(report < cleanup, err);
  // A later failure does not run it again; a body that returns runs nothing.
  capture_stderr([&] { rc = run_guarded([]() -> int { throw Error("again"); }); });
  BOOST_TEST(runs == 1);
  BOOST_TEST(run_guarded([] { return 0; }) == 0);
}

}  // namespace
}  // namespace dtune::dist
