// Wording of a timed-out host collective; see stalled_collective.h.
#include "dtune/dist/stalled_collective.h"

#include <algorithm>
#include <map>

#include "dtune/core/error.h"

namespace dtune::dist {

std::string format_ranks(std::vector<int> ranks) {
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  std::string out;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(ranks[i]);
    if (j > i) {
      out += '-';
      out += std::to_string(ranks[j]);
    }
    i = j + 1;
  }
  return out;
}

namespace {

std::string ranks_phrase(const std::vector<int>& ranks) {
  return (ranks.size() == 1 ? "rank " : "ranks ") + format_ranks(ranks);
}

}  // namespace

std::string describe_stalled_collective(const StalledCollective& me, const std::vector<PeerAnswer>& peers) {
  std::vector<int> silent, same{me.rank};
  std::map<std::string, std::vector<int>> elsewhere;  // "what (#seq)" -> ranks
  for (const PeerAnswer& p : peers) {
    if (!p.answered) {
      silent.push_back(p.rank);
    } else if (p.seq == me.seq && p.what == me.what) {
      same.push_back(p.rank);
    } else {
      elsewhere[str(p.what, " (collective #", p.seq, ")")].push_back(p.rank);
    }
  }
  std::string msg = str("MPI ", me.what, " did not finish within ", me.timeout_s, " s (train.collective_timeout; rank ",
                        me.rank, " waited ", static_cast<int64_t>(me.waited_s), " s)");
  if (!silent.empty()) {
    msg += str(": ", ranks_phrase(silent), silent.size() == 1 ? " has" : " have", " not arrived (no answer within ",
               me.census_s, " s: busy outside MPI, such as a stalled file read or a long computation, stuck, or dead)");
  } else {
    msg += ": every rank answered, so none is missing; the collective itself did not complete (a stalled network or MPI transport)";
  }
  msg += str("; ", ranks_phrase(same), same.size() == 1 ? " was" : " were", " waiting in it (collective #", me.seq, ")");
  for (const auto& [what, ranks] : elsewhere)
    msg += str("; ", ranks_phrase(ranks), ranks.size() == 1 ? " was" : " were", " waiting in ", what,
               " instead: the ranks' collectives do not match (a dtune bug: please report it)");
  msg += ". Ending the job (MPI_Abort).";
  if (!silent.empty())
    msg += str("\n  hint: see what ", ranks_phrase(silent), " last logged and where it is (py-spy dump or gdb -p on its "
               "process); if that work legitimately takes longer (a slow checkpoint write, a long eval, a slow model "
               "load on one node), raise train.collective_timeout");
  else
    msg += "\n  hint: check the interconnect and MPI's transport (docs/HPC.md, troubleshooting)";
  return msg;
}

}  // namespace dtune::dist
