// The checks the HDF5 reader (Hdf5Dataset) applies to a split's arrays once read: the row index
// (offsets, prompt_lengths against the tokens length and the row count the attributes give) and
// token ids against the vocabulary. On plain arrays, without HDF5, so that they are fuzzed on
// their own (tools/fuzz_row_index). Every failure is a dtune::Error that starts with `where`
// ("FILE: /train") and names the dataset, the index and the value.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace dtune {

// REQUIRES of a valid split (docs/DATA_FORMAT.md): offsets has n_rows + 1 entries, where n_rows
// = prompt_lengths.size() = expected_rows; offsets[0] = 0; offsets is non-decreasing; each
// prompt_lengths[i] is in [0, offsets[i+1] - offsets[i]]; offsets.back() = n_tokens.
// After it passes, every row [offsets[i], offsets[i+1]) lies within [0, n_tokens).
void check_row_index(std::span<const int64_t> offsets, std::span<const int32_t> prompt_lengths,
                     int64_t n_tokens, int64_t expected_rows, const std::string& where);

// Every id in [0, vocab_size). ids are tokens[first_index, first_index + ids.size()), row `row`.
void check_token_ids(std::span<const int32_t> ids, int64_t vocab_size, int64_t first_index, int64_t row,
                     const std::string& where);

}  // namespace dtune
