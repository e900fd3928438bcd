// Fault injection for the end-to-end tests; see test_hooks.h.
#include "dtune/train/test_hooks.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "dtune/core/error.h"

namespace dtune {

std::optional<StallAt> parse_stall_at(const std::string& value) {
  if (value.empty()) return std::nullopt;
  const auto colon = value.find(':');
  StallAt at;
  try {
    DTUNE_CHECK(colon != std::string::npos, "no ':'");
    size_t used_rank = 0, used_step = 0;
    at.rank = std::stoi(value.substr(0, colon), &used_rank);
    at.step = std::stoll(value.substr(colon + 1), &used_step);
    DTUNE_CHECK(used_rank == colon && used_step == value.size() - colon - 1 && at.rank >= 0 && at.step >= 1,
                "out of range");
  } catch (const std::exception&) {
    throw Error(str("DTUNE_TEST_STALL_AT_STEP=", value, ": expected RANK:STEP (a rank >= 0 and an optimizer step >= 1, ",
                    "e.g. 1:3); it is a test hook: unset it for a real run"));
  }
  return at;
}

void test_hook_stall_at_step(int rank, int64_t step) {
  static const std::optional<StallAt> at = [] {
    const char* v = std::getenv("DTUNE_TEST_STALL_AT_STEP");
    return parse_stall_at(v ? v : "");
  }();
  if (!at || at->rank != rank || at->step != step) return;
  std::fprintf(stderr, "[rank %d] test hook DTUNE_TEST_STALL_AT_STEP: stalling at the start of step %lld\n", rank,
               static_cast<long long>(step));
  std::fflush(stderr);
  for (;;) sleep(60);  // until MPI_Abort (a peer's collective timeout) or the launcher ends it
}

}  // namespace dtune
