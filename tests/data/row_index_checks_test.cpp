// Tests src/data/row_index_checks.cpp on plain arrays: a valid index passes, and each kind of
// corruption (size, first offset, order, prompt length, last offset, row count, token id) is
// refused with a message naming the dataset, the index and the value.
#include "dtune/data/row_index_checks.h"

#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>
#include <vector>

#include "dtune/core/error.h"

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const dtune::Error& e) {
    return e.what();
  }
  return "";
}

const std::string kWhere = "data.h5: /train";

}  // namespace

BOOST_AUTO_TEST_CASE(a_valid_index_passes) {
  // Rows of 3, 0 and 5 tokens; prompts of 1, 0 and 5 (a row may be all prompt).
  BOOST_CHECK_NO_THROW(dtune::check_row_index(std::vector<int64_t>{0, 3, 3, 8}, std::vector<int32_t>{1, 0, 5}, 8, 3, kWhere));
  BOOST_CHECK_NO_THROW(dtune::check_row_index(std::vector<int64_t>{0}, std::vector<int32_t>{}, 0, 0, kWhere));
}

BOOST_AUTO_TEST_CASE(each_corruption_is_named) {
  using V64 = std::vector<int64_t>;
  using V32 = std::vector<int32_t>;
  struct Case {
    V64 offsets;
    V32 prompts;
    int64_t n_tokens, rows;
    std::string message;
  };
  const Case cases[] = {
      {{0, 3}, {1, 0}, 3, 2, "data.h5: /train/offsets has 2 entries but prompt_lengths has 2; expected n_rows + 1 offsets"},
      {{}, {}, 0, 0, "data.h5: /train/offsets has 0 entries but prompt_lengths has 0"},
      {{0, 3, 8}, {1, 0}, 8, 3, "data.h5: /train has 2 rows but the file's attributes say 3; the file is corrupt"},
      {{1, 3, 8}, {1, 0}, 8, 2, "data.h5: /train/offsets[0] = 1, expected 0"},
      {{0, 5, 3}, {1, 0}, 3, 2, "data.h5: /train/offsets is not monotonic at row 1 (5 then 3); the file is corrupt"},
      {{0, 3, 8}, {4, 0}, 8, 2, "data.h5: /train/prompt_lengths[0] = 4 is outside the row's 3 tokens"},
      {{0, 3, 8}, {1, -1}, 8, 2, "data.h5: /train/prompt_lengths[1] = -1 is outside the row's 5 tokens"},
      {{0, 3, 8}, {1, 0}, 9, 2, "data.h5: /train/offsets ends at 8 but tokens has 9 ids; the file is corrupt"},
  };
  for (const Case& c : cases) {
    const std::string msg = error_of([&] { dtune::check_row_index(c.offsets, c.prompts, c.n_tokens, c.rows, kWhere); });
    BOOST_TEST(msg.find(c.message) == 0, "got: " << msg << "\nwant: " << c.message);
  }
}

BOOST_AUTO_TEST_CASE(token_ids_outside_the_vocabulary_are_named) {
  const std::vector<int32_t> ids = {0, 5, 9};
  BOOST_CHECK_NO_THROW(dtune::check_token_ids(ids, 10, 100, 7, kWhere));
  BOOST_TEST(error_of([&] { dtune::check_token_ids(ids, 9, 100, 7, kWhere); }) ==
             "data.h5: /train/tokens[102] (row 7) = 9 is not a token id in [0, vocab_size=9); the file is corrupt or "
             "was made with another tokenizer");
  const std::vector<int32_t> negative = {3, -2};
  BOOST_TEST(error_of([&] { dtune::check_token_ids(negative, 10, 0, 0, kWhere); }).find("tokens[1] (row 0) = -2") !=
             std::string::npos);
}
