// ShardSampler over 1..5 simulated ranks x seeds x epochs: coverage, no overlap, equal counts,
// reproducibility, per-epoch reshuffle, and the state's JSON round trip and checks.
#include "dtune/data/sampler.h"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <numeric>

#include "dtune/core/error.h"

using dtune::SamplerOptions;
using dtune::ShardSampler;

BOOST_AUTO_TEST_CASE(every_row_once_per_epoch_across_ranks) {
  for (int64_t n : {1, 7, 10, 23, 100}) {
    for (int world = 1; world <= 5; ++world) {
      for (uint64_t seed : {0ull, 42ull, 12345ull}) {
        for (bool drop_last : {false, true}) {
          if (drop_last && n < world) continue;  // rejected, tested below
          for (int64_t epoch = 0; epoch < 3; ++epoch) {
            std::vector<int> seen(static_cast<size_t>(n), 0);
            int64_t per_rank = -1;
            for (int rank = 0; rank < world; ++rank) {
              const ShardSampler s(n, rank, world, SamplerOptions{seed, true, drop_last});
              const std::vector<int64_t> rows = s.rows_for_epoch(epoch);
              BOOST_TEST(static_cast<int64_t>(rows.size()) == s.rows_per_rank());
              if (per_rank >= 0) BOOST_TEST(s.rows_per_rank() == per_rank);  // equal steps
              per_rank = s.rows_per_rank();
              for (int64_t r : rows) {
                BOOST_REQUIRE(r >= 0);
                BOOST_REQUIRE(r < n);
                ++seen[static_cast<size_t>(r)];
              }
            }
            const int64_t total = std::accumulate(seen.begin(), seen.end(), int64_t{0});
            const int64_t remainder = n % world;
            if (drop_last) {
              // floor(n / w) each; exactly n % w rows are left out, none twice.
              BOOST_TEST(total == n - remainder);
              BOOST_TEST(std::count(seen.begin(), seen.end(), 0) == remainder);
              BOOST_TEST(*std::max_element(seen.begin(), seen.end()) == 1);
            } else {
              // ceil(n / w) each: all rows at least once, the padding repeats the first rows
              // of the epoch order, (w - n % w) % w of them.
              const int64_t pad = (world - remainder) % world;
              BOOST_TEST(total == n + pad);
              BOOST_TEST(std::count(seen.begin(), seen.end(), 0) == 0);
              if (n >= world) {
                BOOST_TEST(std::count(seen.begin(), seen.end(), 2) == pad);
              }
            }
          }
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(order_is_reproducible_and_changes_with_epoch_and_seed) {
  const ShardSampler a(1000, 1, 4, SamplerOptions{7, true, false});
  const ShardSampler b(1000, 1, 4, SamplerOptions{7, true, false});
  const ShardSampler c(1000, 1, 4, SamplerOptions{8, true, false});
  BOOST_TEST(a.rows_for_epoch(3) == b.rows_for_epoch(3));
  BOOST_TEST(a.rows_for_epoch(0) != a.rows_for_epoch(1));
  BOOST_TEST(a.rows_for_epoch(0) != c.rows_for_epoch(0));
  // Pinned values: the shuffle is our own splitmix64 Fisher-Yates, so it must not drift
  // between compilers or standard libraries (a resumed run would see other rows).
  const ShardSampler pinned(10, 0, 1, SamplerOptions{42, true, false});
  const std::vector<int64_t> order = pinned.rows_for_epoch(0);
  BOOST_TEST_MESSAGE("pinned order: " << nlohmann::json(order).dump());
  BOOST_TEST(nlohmann::json(order).dump() == "[8,4,1,7,2,6,0,9,3,5]");
}

BOOST_AUTO_TEST_CASE(no_shuffle_is_file_order_strided_over_ranks) {
  const ShardSampler s(10, 2, 3, SamplerOptions{0, false, false});
  // global order 0..9 then pad 0, 1; rank 2 takes positions 2, 5, 8, 11.
  BOOST_TEST(s.rows_for_epoch(5) == (std::vector<int64_t>{2, 5, 8, 1}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(state_round_trips_through_json_and_is_checked) {
  const ShardSampler s(50, 0, 2, SamplerOptions{9, true, false});
  dtune::SamplerState st = s.start_state(4);
  st.position = 13;
  const nlohmann::json j = st;
  const dtune::SamplerState back = j.get<dtune::SamplerState>();
  BOOST_TEST(back.seed == 9u);
  BOOST_TEST(back.epoch == 4);
  BOOST_TEST(back.position == 13);
  s.check_state(back);
  dtune::SamplerState other_world = back;
  other_world.world_size = 4;
  BOOST_CHECK_THROW(s.check_state(other_world), dtune::Error);
  dtune::SamplerState other_seed = back;
  other_seed.seed = 10;
  BOOST_CHECK_THROW(s.check_state(other_seed), dtune::Error);
  BOOST_CHECK_THROW(nlohmann::json({{"seed", 1}}).get<dtune::SamplerState>(), dtune::Error);
}

BOOST_AUTO_TEST_CASE(fewer_rows_than_ranks_with_drop_last_is_an_error) {
  BOOST_CHECK_THROW(ShardSampler(3, 0, 4, SamplerOptions{0, true, true}), dtune::Error);
  BOOST_CHECK_THROW(ShardSampler(0, 0, 1, SamplerOptions{}), dtune::Error);
  BOOST_CHECK_NO_THROW(ShardSampler(3, 3, 4, SamplerOptions{0, true, false}));
}
