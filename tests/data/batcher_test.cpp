// Batcher: padded batches (labels -100 on prompt, first token and padding; masks; lengths),
// length grouping, packing (position ids restart, sequence ids, cu_seqlens, no row split),
// and exact resume from a saved state.
#include "dtune/data/batcher.h"

#include <algorithm>
#include <numeric>
#include <string>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "synthetic_h5.h"
#include "test_files.h"

using dtune::Batch;
using dtune::Batcher;
using dtune::BatcherOptions;
using dtune::Hdf5Dataset;
using dtune::kIgnoreIndex;
using dtune::SamplerOptions;
using dtune::ShardSampler;

namespace {
constexpr int32_t X = kIgnoreIndex;

// n rows alternating short (3..9 tokens) and long (12..20), prompts of 1..3 tokens: packing then
// gives ranks different batch counts.
Hdf5Dataset short_and_long_rows(const dtune::test::ScratchDir& dir, int n) {
  std::vector<int32_t> lengths, prompts;
  for (int i = 0; i < n; ++i) {
    lengths.push_back(i % 2 == 0 ? 3 + (i * 5) % 7 : 12 + (i * 3) % 9);
    prompts.push_back(1 + i % 3);
  }
  dtune::test::write_synthetic_h5(dir.file("d.h5"), dtune::test::make_rows(lengths, prompts));
  return Hdf5Dataset::open(dir.file("d.h5"), "train");
}

struct Mode {
  const char* name;
  BatcherOptions options;
};
}  // namespace

BOOST_AUTO_TEST_CASE(padded_batch_labels_mask_and_positions) {
  dtune::test::ScratchDir dir("batch_pad");
  // Row 0: 3 tokens, prompt 2. Row 1: 5 tokens, prompt 1. Row 2: 2 tokens, prompt 0.
  dtune::test::write_synthetic_h5(dir.file("d.h5"), dtune::test::make_rows({3, 5, 2}, {2, 1, 0}));
  const Hdf5Dataset data = Hdf5Dataset::open(dir.file("d.h5"), "train");
  const ShardSampler sampler(3, 0, 1, SamplerOptions{0, false, false});
  Batcher batcher(data, sampler, BatcherOptions{2, false, 0, 0, /*pad_id=*/7});
  BOOST_TEST(batcher.batches_in_epoch(0) == 2);
  Batch b;
  BOOST_REQUIRE(batcher.next(b));
  BOOST_TEST(b.batch_size == 2);
  BOOST_TEST(b.seq_len == 5);
  BOOST_TEST(b.input_ids == (std::vector<int32_t>{0, 1, 2, 7, 7, 10, 11, 12, 13, 14}),
             boost::test_tools::per_element());
  BOOST_TEST(b.labels == (std::vector<int32_t>{X, X, 2, X, X, X, 11, 12, 13, 14}),
             boost::test_tools::per_element());
  BOOST_TEST(b.attention_mask == (std::vector<int32_t>{1, 1, 1, 0, 0, 1, 1, 1, 1, 1}),
             boost::test_tools::per_element());
  BOOST_TEST(b.position_ids == (std::vector<int32_t>{0, 1, 2, 0, 0, 0, 1, 2, 3, 4}),
             boost::test_tools::per_element());
  BOOST_TEST(b.lengths == (std::vector<int32_t>{3, 5}), boost::test_tools::per_element());
  BOOST_TEST(b.cu_seqlens == (std::vector<int32_t>{0, 3, 5, 10}), boost::test_tools::per_element());
  BOOST_TEST(b.num_loss_tokens == 5);
  BOOST_REQUIRE(batcher.next(b));  // the short last batch
  BOOST_TEST(b.batch_size == 1);
  // prompt 0: the first token still takes no loss (nothing before it to predict from).
  BOOST_TEST(b.labels == (std::vector<int32_t>{X, 21}), boost::test_tools::per_element());
  BOOST_TEST(!batcher.next(b));
  BOOST_TEST(batcher.state().epoch == 1);
  BOOST_TEST(batcher.state().position == 0);
}

BOOST_AUTO_TEST_CASE(group_window_sorts_by_length_within_the_window) {
  dtune::test::ScratchDir dir("batch_group");
  dtune::test::write_synthetic_h5(dir.file("d.h5"),
                                  dtune::test::make_rows({2, 9, 4, 7, 3, 8}, {1, 1, 1, 1, 1, 1}));
  const Hdf5Dataset data = Hdf5Dataset::open(dir.file("d.h5"), "train");
  const ShardSampler sampler(6, 0, 1, SamplerOptions{0, false, false});
  // window = 2 batches x 2 rows: rows {0,1,2,3} sorted -> 1,3 | 2,0 ; then {4,5} -> 5,4.
  Batcher batcher(data, sampler, BatcherOptions{2, false, 0, 2, 0});
  std::vector<std::vector<int64_t>> got;
  Batch b;
  while (batcher.next(b)) got.push_back(b.rows);
  BOOST_REQUIRE(got.size() == 3u);
  BOOST_TEST(got[0] == (std::vector<int64_t>{1, 3}), boost::test_tools::per_element());
  BOOST_TEST(got[1] == (std::vector<int64_t>{2, 0}), boost::test_tools::per_element());
  BOOST_TEST(got[2] == (std::vector<int64_t>{5, 4}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(packing_keeps_rows_whole_and_positions_restart) {
  dtune::test::ScratchDir dir("batch_pack");
  // lengths 3, 4, 2, 6, 1 into sequences of 8, 2 sequences per batch:
  //   batch 0: [r0 r1 pad] [r2 r3]   batch 1: [r4 pad]
  dtune::test::write_synthetic_h5(dir.file("d.h5"),
                                  dtune::test::make_rows({3, 4, 2, 6, 1}, {1, 2, 1, 3, 0}));
  const Hdf5Dataset data = Hdf5Dataset::open(dir.file("d.h5"), "train");
  const ShardSampler sampler(5, 0, 1, SamplerOptions{0, false, false});
  Batcher batcher(data, sampler, BatcherOptions{2, true, 8, 0, 0});
  BOOST_TEST(batcher.batches_in_epoch(0) == 2);
  Batch b;
  BOOST_REQUIRE(batcher.next(b));
  BOOST_TEST(b.batch_size == 2);
  BOOST_TEST(b.seq_len == 8);
  BOOST_TEST(b.input_ids == (std::vector<int32_t>{0, 1, 2, 10, 11, 12, 13, 0,  //
                                                  20, 21, 30, 31, 32, 33, 34, 35}),
             boost::test_tools::per_element());
  BOOST_TEST(b.position_ids == (std::vector<int32_t>{0, 1, 2, 0, 1, 2, 3, 0,  //
                                                     0, 1, 0, 1, 2, 3, 4, 5}),
             boost::test_tools::per_element());
  BOOST_TEST(b.sequence_ids == (std::vector<int32_t>{0, 0, 0, 1, 1, 1, 1, -1,  //
                                                     0, 0, 1, 1, 1, 1, 1, 1}),
             boost::test_tools::per_element());
  BOOST_TEST(b.labels == (std::vector<int32_t>{X, 1, 2, X, X, 12, 13, X,  //
                                               X, 21, X, X, X, 33, 34, 35}),
             boost::test_tools::per_element());
  BOOST_TEST(b.cu_seqlens == (std::vector<int32_t>{0, 3, 7, 8, 10, 16}),
             boost::test_tools::per_element());
  BOOST_TEST(b.max_segment_len == 6);
  BOOST_TEST(b.lengths == (std::vector<int32_t>{7, 8}), boost::test_tools::per_element());
  BOOST_REQUIRE(batcher.next(b));
  BOOST_TEST(b.batch_size == 1);
  BOOST_TEST(b.rows == (std::vector<int64_t>{4}), boost::test_tools::per_element());
  BOOST_TEST(!batcher.next(b));
}

BOOST_AUTO_TEST_CASE(restoring_a_saved_state_continues_exactly) {
  dtune::test::ScratchDir dir("batch_resume");
  std::vector<int32_t> lengths, prompts;
  for (int i = 0; i < 37; ++i) {
    lengths.push_back(2 + (i * 7) % 11);
    prompts.push_back(1);
  }
  dtune::test::write_synthetic_h5(dir.file("d.h5"), dtune::test::make_rows(lengths, prompts));
  const Hdf5Dataset data = Hdf5Dataset::open(dir.file("d.h5"), "train");
  for (bool pack : {false, true}) {
    const ShardSampler sampler(37, 1, 3, SamplerOptions{5, true, false});
    const BatcherOptions opts{3, pack, 16, pack ? 0 : 2, 0};
    // Uninterrupted: 2 epochs of row lists.
    Batcher full(data, sampler, opts);
    std::vector<std::vector<int64_t>> expect;
    Batch b;
    for (int e = 0; e < 2; ++e) {
      while (full.next(b)) expect.push_back(b.rows);
    }
    // Interrupted mid-epoch (padded: after 3 batches = 9 rows, inside the second window of 6),
    // state through JSON, a new batcher restores it.
    Batcher first(data, sampler, opts);
    std::vector<std::vector<int64_t>> got;
    for (int i = 0; i < (pack ? 2 : 3); ++i) {
      BOOST_REQUIRE(first.next(b));
      got.push_back(b.rows);
    }
    const std::string saved = nlohmann::json(first.state()).dump();
    Batcher second(data, sampler, opts);
    second.restore(nlohmann::json::parse(saved).get<dtune::SamplerState>());
    for (int e = 0; e < 2; ++e) {
      while (second.next(b)) got.push_back(b.rows);
    }
    BOOST_TEST_INFO("pack=" << pack);
    BOOST_TEST(got == expect);
  }
}

// Every row once per epoch, counted from the batches each simulated rank runs under the
// trainer's rule (the epoch lasts the most micro-batches any rank has; a rank whose rows are
// used up runs empty micro-batches): padded, grouped and packed, 1 to 4 ranks, shuffled or
// not, two epochs. Row lengths are chosen so packing gives ranks different batch counts. The
// expected count of a row is its count in the sampler's global order: 1, or 2 for the
// documented wrap-around of an uneven split.
BOOST_AUTO_TEST_CASE(every_row_is_trained_once_per_epoch_on_any_number_of_ranks) {
  dtune::test::ScratchDir dir("batch_every_row");
  const Hdf5Dataset data = short_and_long_rows(dir, 23);
  const Mode modes[] = {{"padded", BatcherOptions{2, false, 0, 0, 0}},
                        {"grouped", BatcherOptions{2, false, 0, 3, 0}},
                        {"packed", BatcherOptions{1, true, 24, 0, 0}},
                        {"packed x2", BatcherOptions{2, true, 32, 0, 0}}};
  bool ranks_differed = false;  // the packed cases must exercise uneven per-rank counts
  for (const Mode& mode : modes) {
    for (int world = 1; world <= 4; ++world) {
      for (bool shuffle : {false, true}) {
        std::vector<ShardSampler> samplers;
        for (int r = 0; r < world; ++r) samplers.emplace_back(23, r, world, SamplerOptions{7, shuffle, false});
        std::vector<Batcher> batchers;
        for (int r = 0; r < world; ++r) batchers.emplace_back(data, samplers[r], mode.options);
        for (int64_t epoch = 0; epoch < 2; ++epoch) {
          BOOST_TEST_INFO(mode.name << ", " << world << " rank(s), shuffle " << shuffle << ", epoch " << epoch);
          std::vector<int64_t> per_rank;
          for (int r = 0; r < world; ++r) {
            batchers[r].restore(samplers[r].start_state(epoch));
            per_rank.push_back(batchers[r].batches_in_epoch(epoch));
          }
          const int64_t micro = *std::max_element(per_rank.begin(), per_rank.end());
          ranks_differed |= *std::min_element(per_rank.begin(), per_rank.end()) != micro;
          std::vector<int> trained(23, 0);
          for (int r = 0; r < world; ++r) {
            int64_t ran = 0;
            for (int64_t i = 0; i < micro; ++i) {
              Batch b = dtune::make_empty_batch();
              if (batchers[r].rows_left()) {
                BOOST_REQUIRE(batchers[r].next(b));
                ++ran;
              }
              for (int64_t row : b.rows) ++trained[static_cast<size_t>(row)];
            }
            BOOST_TEST(ran == per_rank[r]);            // batches_in_epoch() counts next() exactly
            BOOST_TEST(!batchers[r].rows_left());      // nothing of the epoch is left behind
          }
          std::vector<int> expect(23, 0);
          for (int64_t row : samplers[0].global_order(epoch)) ++expect[static_cast<size_t>(row)];
          BOOST_TEST(trained == expect, boost::test_tools::per_element());
          for (int c : expect) BOOST_TEST((c == 1 || (c == 2 && 23 % world != 0)));
        }
      }
    }
  }
  BOOST_TEST(ranks_differed);
}

// A run resumed on another number of ranks mid-epoch (SamplerState::reshards): the rows the
// earlier worlds had not reached are dealt out over the new one, so across the interruptions
// every row of the epoch is trained once. Chains of worlds 2 -> 1, 2 -> 4, 3 -> 2 -> 1 and
// 1 -> 3, interrupted after 0 to 3 micro-batches, padded, grouped and packed (uneven positions).
// The only repeats are the wrap-around padding of a world whose rows do not divide evenly (the
// documented exception): for the last world exactly ceil(left / w) * w - left of them.
BOOST_AUTO_TEST_CASE(a_reshard_mid_epoch_trains_every_row_once) {
  dtune::test::ScratchDir dir("batch_reshard");
  constexpr int64_t kRows = 24;
  const Hdf5Dataset data = short_and_long_rows(dir, kRows);
  const Mode modes[] = {{"padded", BatcherOptions{2, false, 0, 0, 0}},
                        {"grouped", BatcherOptions{2, false, 0, 3, 0}},
                        {"packed", BatcherOptions{1, true, 24, 0, 0}}};
  const std::vector<std::vector<int>> chains = {{2, 1}, {2, 4}, {3, 2, 1}, {1, 3}};
  for (const Mode& mode : modes) {
    for (const std::vector<int>& chain : chains) {
      for (int64_t stop_after = 0; stop_after <= 3; ++stop_after) {
        BOOST_TEST_CONTEXT(mode.name << ", worlds " << chain.front() << ".." << chain.back() << ", "
                                     << stop_after << " micro-batches per world") {
        std::vector<int> trained(kRows, 0);
        int64_t extra_before_last = 0, left_for_last = kRows;
        std::vector<dtune::Reshard> reshards;  // what a checkpoint carries into the next world
        for (size_t k = 0; k < chain.size(); ++k) {
          const int world = chain[k];
          const bool last = k + 1 == chain.size();
          if (last) {
            left_for_last = std::count(trained.begin(), trained.end(), 0);
            extra_before_last = std::accumulate(trained.begin(), trained.end(), int64_t{0}) - (kRows - left_for_last);
          }
          std::vector<ShardSampler> samplers;
          for (int r = 0; r < world; ++r) samplers.emplace_back(kRows, r, world, SamplerOptions{5, true, false});
          std::vector<Batcher> batchers;
          for (int r = 0; r < world; ++r) batchers.emplace_back(data, samplers[r], mode.options);
          dtune::Reshard reached{world, {}};
          for (int r = 0; r < world; ++r) {
            dtune::SamplerState st = samplers[r].start_state(1);
            st.reshards = reshards;
            // As a checkpoint carries it: through JSON.
            batchers[r].restore(nlohmann::json(st).get<dtune::SamplerState>());
            const int64_t batches = batchers[r].batches_in_epoch(1);
            int64_t ran = 0;
            for (; batchers[r].rows_left() && (last || ran < stop_after); ++ran) {
              Batch b;
              BOOST_REQUIRE(batchers[r].next(b));
              for (int64_t row : b.rows) ++trained[static_cast<size_t>(row)];
            }
            if (last) BOOST_TEST(ran == batches);  // batches_in_epoch counts the resharded plan
            reached.positions.push_back(batchers[r].state().position);
          }
          reshards.push_back(reached);
        }
        const int64_t extra = std::accumulate(trained.begin(), trained.end(), int64_t{0}) - kRows;
        const int64_t w = chain.back();
        for (int c : trained) BOOST_TEST((c == 1 || c == 2));
        BOOST_TEST(extra == extra_before_last + (left_for_last + w - 1) / w * w - left_for_last);
        }
      }
    }
  }
}

// A reshard that does not fit the epoch is a damaged checkpoint, named as such.
BOOST_AUTO_TEST_CASE(a_damaged_reshard_is_refused) {
  const ShardSampler s(24, 0, 2, SamplerOptions{5, true, false});
  const std::vector<dtune::Reshard> short_list = {dtune::Reshard{3, {1, 2}}};  // 2 positions for 3 ranks
  const std::vector<dtune::Reshard> past_share = {dtune::Reshard{2, {13, 0}}};  // a share is 12 rows
  const std::vector<dtune::Reshard> no_world = {dtune::Reshard{0, {}}};
  BOOST_CHECK_THROW(s.rows_for_epoch(0, short_list), dtune::Error);
  BOOST_CHECK_THROW(s.rows_for_epoch(0, past_share), dtune::Error);
  BOOST_CHECK_THROW(s.rows_for_epoch(0, no_world), dtune::Error);
  const nlohmann::json no_positions = {{"seed", 5},     {"epoch", 0},      {"position", 0},
                                       {"num_rows", 24}, {"world_size", 2}, {"reshards", {{{"world_size", 2}}}}};
  BOOST_CHECK_THROW(no_positions.get<dtune::SamplerState>(), dtune::Error);
  // A state of a resharded epoch is checked against that epoch's plan: 12 rows left for 2 ranks.
  dtune::SamplerState st = s.start_state(0);
  st.reshards = {dtune::Reshard{4, {3, 3, 3, 3}}};
  st.position = 6;
  BOOST_CHECK_NO_THROW(s.check_state(st));
  st.position = 7;
  BOOST_CHECK_THROW(s.check_state(st), dtune::Error);
}

BOOST_AUTO_TEST_CASE(an_empty_batch_has_no_rows_and_no_loss_tokens) {
  const Batch b = dtune::make_empty_batch();
  BOOST_TEST(b.batch_size == 0);
  BOOST_TEST(b.rows.empty());
  BOOST_TEST(b.lengths.empty());
  BOOST_TEST(b.num_loss_tokens == 0);
  BOOST_TEST(b.cu_seqlens == (std::vector<int32_t>{0}), boost::test_tools::per_element());
}
