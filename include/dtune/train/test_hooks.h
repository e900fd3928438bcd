// Fault injection for the end-to-end tests, read from the environment. Never set in a real run;
// each hook names its variable, and does nothing when the variable is unset.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace dtune {

// Where DTUNE_TEST_STALL_AT_STEP=RANK:STEP asks a rank to stall: that rank, at the start of that
// optimizer step (1-based: the step it is about to compute).
struct StallAt {
  int rank = 0;
  int64_t step = 0;
};

// Parses the variable's value. nullopt for an empty value; throws dtune::Error naming the
// variable for anything but RANK:STEP with RANK >= 0 and STEP >= 1.
std::optional<StallAt> parse_stall_at(const std::string& value);

// TEST HOOK (train_e2e_test's hung-rank test): when DTUNE_TEST_STALL_AT_STEP=RANK:STEP names this
// rank and step, logs that it stalls and then sleeps until the job is ended from outside (as a
// rank stuck in a file system read would, without calling MPI). Called by the trainer at the
// start of each optimizer step.
void test_hook_stall_at_step(int rank, int64_t step);

}  // namespace dtune
