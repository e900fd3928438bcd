// The message of a host collective that outlived train.collective_timeout: which collective, in
// which phase of the run, and what each peer rank answered to the census that the timed-out rank
// ran (mpi_communicator.cpp). Pure C++ (no MPI), so that the wording is tested on its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dtune::dist {

// This rank's view of the collective it gave up on.
struct StalledCollective {
  int rank = 0;
  int64_t seq = 0;        // 1-based count of bounded waits on this communicator: the same on every rank for the same call
  std::string what;       // e.g. "all_reduce_scalar (step 3)": the collective and the trainer's phase
  double waited_s = 0;    // how long this rank waited
  double timeout_s = 0;   // train.collective_timeout
  double census_s = 0;    // how long the census waited for answers
};

// What one peer answered. A rank answers while it polls in a bounded wait of its own; a rank that
// computes, blocks outside MPI (a stalled read), hangs or died does not answer.
struct PeerAnswer {
  int rank = 0;
  bool answered = false;
  int64_t seq = 0;        // its count of bounded waits (when answered)
  std::string what;       // the collective it waits in (when answered)
};

// "1", "0-3", "0-3,5,7-9": ascending, duplicates dropped.
std::string format_ranks(std::vector<int> ranks);

// The error message: the collective and phase, the bound, the ranks that had not arrived (no
// answer), the ranks waiting in the same collective, the ranks waiting in another one (calls that
// do not match across ranks), and a hint. peers holds every other rank once.
std::string describe_stalled_collective(const StalledCollective& me, const std::vector<PeerAnswer>& peers);

}  // namespace dtune::dist
