// Row index and token id checks of a pretokenized split; see row_index_checks.h.
#include "dtune/data/row_index_checks.h"

#include "dtune/core/error.h"
#include "dtune/data/hdf5_format.h"

namespace dtune {

void check_row_index(std::span<const int64_t> offsets, std::span<const int32_t> prompt_lengths,
                     int64_t n_tokens, int64_t expected_rows, const std::string& where) {
  const size_t n_rows = prompt_lengths.size();
  DTUNE_CHECK(offsets.size() == n_rows + 1, where, "/", kOffsetsName, " has ", offsets.size(), " entries but ",
              kPromptLengthsName, " has ", n_rows, "; expected n_rows + 1 offsets");
  DTUNE_CHECK(static_cast<int64_t>(n_rows) == expected_rows, where, " has ", n_rows,
              " rows but the file's attributes say ", expected_rows, "; the file is corrupt");
  DTUNE_CHECK(offsets[0] == 0, where, "/", kOffsetsName, "[0] = ", offsets[0], ", expected 0");
  for (size_t i = 0; i < n_rows; ++i) {
    // offsets[i] >= 0 here (offsets[0] = 0 and non-decreasing so far): no overflow.
    DTUNE_CHECK(offsets[i + 1] >= offsets[i], where, "/", kOffsetsName, " is not monotonic at row ", i, " (",
                offsets[i], " then ", offsets[i + 1], "); the file is corrupt");
    const int64_t len = offsets[i + 1] - offsets[i];
    DTUNE_CHECK(prompt_lengths[i] >= 0 && prompt_lengths[i] <= len, where, "/", kPromptLengthsName, "[", i, "] = ",
                prompt_lengths[i], " is outside the row's ", len, " tokens; the file is corrupt");
  }
  DTUNE_CHECK(offsets.back() == n_tokens, where, "/", kOffsetsName, " ends at ", offsets.back(), " but ", kTokensName,
              " has ", n_tokens, " ids; the file is corrupt");
}

void check_token_ids(std::span<const int32_t> ids, int64_t vocab_size, int64_t first_index, int64_t row,
                     const std::string& where) {
  for (size_t k = 0; k < ids.size(); ++k) {
    DTUNE_CHECK(ids[k] >= 0 && ids[k] < vocab_size, where, "/", kTokensName, "[", first_index + static_cast<int64_t>(k),
                "] (row ", row, ") = ", ids[k], " is not a token id in [0, vocab_size=", vocab_size,
                "); the file is corrupt or was made with another tokenizer");
  }
}

}  // namespace dtune
