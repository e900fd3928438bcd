// Tests src/train/test_hooks.cpp: DTUNE_TEST_STALL_AT_STEP's value parses as RANK:STEP, and
// anything else is refused with the variable's name and the expected form.
#include "dtune/train/test_hooks.h"

#include <boost/test/unit_test.hpp>

#include "dtune/core/error.h"

BOOST_AUTO_TEST_CASE(stall_at_parses_rank_and_step) {
  BOOST_TEST(!dtune::parse_stall_at("").has_value());
  const auto at = dtune::parse_stall_at("1:4");
  BOOST_REQUIRE(at.has_value());
  BOOST_TEST(at->rank == 1);
  BOOST_TEST(at->step == 4);
  BOOST_TEST(dtune::parse_stall_at("0:1")->rank == 0);
}

BOOST_AUTO_TEST_CASE(stall_at_refuses_other_forms) {
  for (const char* bad : {"4", "1:", ":4", "1:0", "-1:3", "1:4x", "a:b", "1:2:3"}) {
    try {
      (void)dtune::parse_stall_at(bad);
      BOOST_ERROR("accepted " << bad);
    } catch (const dtune::Error& e) {
      const std::string m = e.what();
      BOOST_TEST(m.find(std::string("DTUNE_TEST_STALL_AT_STEP=") + bad + ": expected RANK:STEP") != std::string::npos, m);
      BOOST_TEST(m.find("unset it for a real run") != std::string::npos, m);
    }
  }
}
