// libFuzzer target: dtune's checks on a pretokenized split's arrays (check_row_index,
// check_token_ids: what Hdf5Dataset applies after reading them; the HDF5 library's own parsing is
// out of scope). Input layout, little-endian, missing bytes read as 0:
//   u32 n_rows (mod 4096), u8 offsets-count skew (n_rows + 1 + skew % 3 - 1 offsets),
//   i64 n_tokens, i64 expected_rows, i64 vocab_size, then the offsets (i64 each), the
//   prompt_lengths (i32 each), and the rest as token ids (i32 each).
// The corpus holds the real arrays of tests/fixtures' pretokenized files in this layout
// (make_corpus.py). Each check must throw dtune::Error exactly when a plain restatement of the
// format (docs/DATA_FORMAT.md) says the arrays are invalid, and never crash. Build/run:
// scripts/fuzz.sh.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "dtune/core/error.h"
#include "dtune/data/row_index_checks.h"
#include "fuzz_support.h"

using dtune::fuzz::check;

namespace {

struct Input {
  const uint8_t* data;
  size_t size;
  template <typename T>
  T take() {
    T v{};
    const size_t n = std::min(sizeof(T), size);
    std::memcpy(&v, data, n);
    data += n;
    size -= n;
    return v;
  }
};

// The format, restated plainly: true when the row index is valid.
bool index_is_valid(const std::vector<int64_t>& offsets, const std::vector<int32_t>& prompts, int64_t n_tokens,
                    int64_t expected_rows) {
  if (offsets.size() != prompts.size() + 1) return false;
  if (static_cast<int64_t>(prompts.size()) != expected_rows) return false;
  if (offsets[0] != 0 || offsets.back() != n_tokens) return false;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (offsets[i + 1] < offsets[i]) return false;
    if (prompts[i] < 0 || static_cast<int64_t>(prompts[i]) > offsets[i + 1] - offsets[i]) return false;
  }
  return true;
}

bool throws(const std::function<void()>& f) {
  try {
    f();
  } catch (const dtune::Error&) {
    return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  const size_t n_rows = in.take<uint32_t>() % 4096;
  const size_t n_offsets = n_rows + 1 + in.take<uint8_t>() % 3 - 1;
  const int64_t n_tokens = in.take<int64_t>();
  const int64_t expected_rows = in.take<int64_t>();
  const int64_t vocab_size = in.take<int64_t>();
  std::vector<int64_t> offsets(n_offsets);
  for (auto& o : offsets) o = in.take<int64_t>();
  std::vector<int32_t> prompts(n_rows);
  for (auto& p : prompts) p = in.take<int32_t>();
  std::vector<int32_t> tokens(in.size / 4);
  for (auto& t : tokens) t = in.take<int32_t>();

  const bool valid = index_is_valid(offsets, prompts, n_tokens, expected_rows);
  const bool rejected = throws([&] { dtune::check_row_index(offsets, prompts, n_tokens, expected_rows, "fuzz.h5: /train"); });
  check(rejected == !valid, "check_row_index throws exactly for an invalid index");
  if (!valid) return 0;

  // Rows of a valid index lie within [0, n_tokens): read those that the input's ids cover.
  for (size_t row = 0; row < n_rows; ++row) {
    check(offsets[row] >= 0 && offsets[row + 1] <= n_tokens, "a row within the tokens");
    if (offsets[row + 1] > static_cast<int64_t>(tokens.size())) break;
    const std::span<const int32_t> ids(tokens.data() + offsets[row], static_cast<size_t>(offsets[row + 1] - offsets[row]));
    bool ids_valid = true;
    for (const int32_t id : ids) ids_valid = ids_valid && id >= 0 && id < vocab_size;
    const bool ids_rejected =
        throws([&] { dtune::check_token_ids(ids, vocab_size, offsets[row], static_cast<int64_t>(row), "fuzz.h5: /train"); });
    check(ids_rejected == !ids_valid, "check_token_ids throws exactly for an id out of range");
  }
  return 0;
}
