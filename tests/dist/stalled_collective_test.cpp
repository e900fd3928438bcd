// Tests src/dist/stalled_collective.cpp: rank lists as ranges, and the timeout message for each
// census outcome (a silent rank, every rank waiting, a rank in another collective).
#include "dtune/dist/stalled_collective.h"

#include <boost/test/unit_test.hpp>

namespace dtune::dist {
namespace {

StalledCollective at_step_3() {
  StalledCollective me;
  me.rank = 0;
  me.seq = 42;
  me.what = "all_reduce_scalar (step 3)";
  me.waited_s = 10.4;
  me.timeout_s = 10;
  me.census_s = 3;
  return me;
}

PeerAnswer waiting(int rank, int64_t seq, const std::string& what) { return {rank, true, seq, what}; }
PeerAnswer silent(int rank) { return {rank, false, 0, ""}; }

bool has(const std::string& text, const std::string& piece) { return text.find(piece) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(rank_lists_collapse_to_ranges) {
  BOOST_TEST(format_ranks({}) == "");
  BOOST_TEST(format_ranks({1}) == "1");
  BOOST_TEST(format_ranks({3, 0, 1, 2}) == "0-3");
  BOOST_TEST(format_ranks({0, 1, 2, 3, 5, 7, 8, 9, 9}) == "0-3,5,7-9");
}

BOOST_AUTO_TEST_CASE(a_silent_rank_is_named_as_not_arrived) {
  const std::string m = describe_stalled_collective(at_step_3(), {silent(1)});
  BOOST_TEST(has(m, "MPI all_reduce_scalar (step 3) did not finish within 10 s (train.collective_timeout; rank 0 "
                    "waited 10 s): rank 1 has not arrived (no answer within 3 s"),
             m);
  BOOST_TEST(has(m, "rank 0 was waiting in it (collective #42)"), m);
  BOOST_TEST(has(m, "Ending the job (MPI_Abort)"), m);
  BOOST_TEST(has(m, "hint: see what rank 1 last logged"), m);
  BOOST_TEST(has(m, "raise train.collective_timeout"), m);
}

BOOST_AUTO_TEST_CASE(many_ranks_are_listed_as_ranges) {
  std::vector<PeerAnswer> peers;
  for (int r = 1; r < 16; ++r)
    peers.push_back(r == 5 || r == 6 || r == 12 ? silent(r) : waiting(r, 42, "all_reduce_scalar (step 3)"));
  const std::string m = describe_stalled_collective(at_step_3(), peers);
  BOOST_TEST(has(m, "ranks 5-6,12 have not arrived"), m);
  BOOST_TEST(has(m, "ranks 0-4,7-11,13-15 were waiting in it (collective #42)"), m);
}

BOOST_AUTO_TEST_CASE(every_rank_waiting_blames_the_transport_not_a_rank) {
  const std::string m = describe_stalled_collective(at_step_3(), {waiting(1, 42, "all_reduce_scalar (step 3)")});
  BOOST_TEST(has(m, "every rank answered, so none is missing"), m);
  BOOST_TEST(has(m, "ranks 0-1 were waiting in it"), m);
  BOOST_TEST(!has(m, "has not arrived"), m);
  BOOST_TEST(has(m, "hint: check the interconnect"), m);
}

BOOST_AUTO_TEST_CASE(a_rank_in_another_collective_is_a_mismatch) {
  const std::string m = describe_stalled_collective(
      at_step_3(), {waiting(1, 41, "barrier (checkpoint at step 2 (save_every))"), silent(2)});
  BOOST_TEST(has(m, "rank 2 has not arrived"), m);
  BOOST_TEST(has(m, "rank 1 was waiting in barrier (checkpoint at step 2 (save_every)) (collective #41) instead: "
                    "the ranks' collectives do not match"),
             m);
  BOOST_TEST(has(m, "rank 0 was waiting in it"), m);
}

}  // namespace dtune::dist
