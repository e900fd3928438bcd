// One run per output folder and resume with the same run: RunLock (exclusive, named holder,
// stale locks reported, the same Slurm job takes over) and check_resume_config (keys that change
// what the run computes refused by name, the others allowed and listed).
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "dtune/core/error.h"
#include "dtune/train/resume_config.h"
#include "dtune/train/run_lock.h"

namespace fs = std::filesystem;

namespace {

// Runs f, expects a dtune::Error whose message contains piece.
template <typename F>
void expect_error(F f, const std::string& piece) {
  try {
    f();
  } catch (const dtune::Error& e) {
    BOOST_TEST(std::string(e.what()).find(piece) != std::string::npos, "'" << piece << "' not in: " << e.what());
    return;
  }
  BOOST_FAIL("expected dtune::Error with: " << piece);
}

fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("dtune_runguard_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

// A pid that is certainly not running: a child that has exited and been reaped.
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return static_cast<long>(child);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_second_run_on_one_folder_is_refused_naming_the_first) {
  const fs::path dir = scratch("busy");
  dtune::RunLockHolder first = dtune::current_run_holder();
  first.job_id = "4711";
  {
    const dtune::RunLock lock = dtune::RunLock::acquire(dir.string(), first);
    BOOST_TEST(fs::exists(lock.path()));
    dtune::RunLockHolder second = first;
    second.job_id = "4712";
    second.pid = first.pid + 1;
    expect_error([&] { (void)dtune::RunLock::acquire(dir.string(), second); },
                 "is in use by another run (Slurm job 4711, pid " + std::to_string(first.pid) + " on " + first.host);
    expect_error([&] { (void)dtune::RunLock::acquire(dir.string(), second); },
                 "(a crashed node: `squeue -j 4711` shows nothing), delete " + (dir / ".dtune-run.lock").string());
    // Another process of the same Slurm job while the first is alive on this host (a second
    // launch inside one job): refused too.
    dtune::RunLockHolder same_job = first;
    same_job.pid = first.pid + 2;
    expect_error([&] { (void)dtune::RunLock::acquire(dir.string(), same_job); }, "is in use by another run");
  }
  {
    // A requeue of the same Slurm job after a crash (the holder is gone) takes its lock over.
    dtune::RunLockHolder crashed = first;
    crashed.pid = dead_pid();
    const dtune::RunLock old = dtune::RunLock::acquire(dir.string(), crashed);
    dtune::RunLockHolder requeued = first;
    requeued.pid = first.pid + 3;
    const dtune::RunLock again = dtune::RunLock::acquire(dir.string(), requeued);
    BOOST_TEST(fs::exists(again.path()));
  }
  BOOST_TEST(!fs::exists(dir / ".dtune-run.lock"));  // released with the run
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_stale_lock_is_reported_not_stolen) {
  const fs::path dir = scratch("stale");
  dtune::RunLockHolder crashed = dtune::current_run_holder();
  crashed.pid = dead_pid();
  fs::create_directories(dir);
  std::ofstream(dir / ".dtune-run.lock") << R"({"job_id": "", "host": ")" << crashed.host << R"(", "pid": )"
                                         << crashed.pid << R"(, "started": "2026-11-30T00:00:00Z"})";
  expect_error([&] { (void)dtune::RunLock::acquire(dir.string()); }, "holds a stale run lock: pid " + std::to_string(crashed.pid));
  BOOST_TEST(fs::exists(dir / ".dtune-run.lock"));  // left for the user to remove
  std::ofstream(dir / ".dtune-run.lock") << "{torn";
  expect_error([&] { (void)dtune::RunLock::acquire(dir.string()); }, "exists but is unreadable");
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(resume_refuses_keys_that_change_the_run_and_lists_the_others) {
  const std::string stored =
      "[model]\npath = m\n\n[train]\nlearning_rate = 0.0002\neval_every = 0\nold_key = 1\n\n[checkpoint]\nresume = \n";
  const std::string same_run =
      "[model]\npath = m\n\n[train]\nlearning_rate = 0.0002\neval_every = 10\nnew_key = 2\n\n[checkpoint]\nresume = latest\n";
  const auto allowed = dtune::check_resume_config(stored, same_run, "out/checkpoint-3");
  BOOST_REQUIRE(allowed.size() == 1u);  // checkpoint.resume and one-sided keys are not compared
  BOOST_TEST(allowed[0].key == "train.eval_every");
  BOOST_TEST(allowed[0].stored == "0");
  BOOST_TEST(allowed[0].current == "10");
  const std::string other_run = "[model]\npath = other\n\n[train]\nlearning_rate = 0.0001\neval_every = 0\n";
  expect_error([&] { (void)dtune::check_resume_config(stored, other_run, "out/checkpoint-3"); },
               "cannot resume out/checkpoint-3 with a different run: these keys change what the run computes\n"
               "  model.path: m in the checkpoint, other now\n  train.learning_rate: 0.0002 in the checkpoint, 0.0001 now");
  BOOST_TEST(dtune::resume_may_change("log.log_every"));
  BOOST_TEST(dtune::resume_may_change("train.device"));  // CPU checkpoint resumed on a GPU
  BOOST_TEST(dtune::resume_may_change("train.collective_timeout"));
  // A checkpoint written before the rename holds train.nccl_timeout: one-sided, not compared.
  BOOST_TEST(dtune::check_resume_config("[train]\nnccl_timeout = 600\n", "[train]\ncollective_timeout = 60\n",
                                        "out/checkpoint-3").empty());
  BOOST_TEST(!dtune::resume_may_change("train.precision"));
  BOOST_TEST(!dtune::resume_may_change("lora.r"));
  BOOST_TEST(!dtune::resume_may_change("data.micro_batch_size"));
}
