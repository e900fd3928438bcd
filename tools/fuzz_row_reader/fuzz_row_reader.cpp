// libFuzzer target: arbitrary bytes as a `dtune pretokenize` input file -> RowReader (JSON array
// or JSON Lines) read to the end with two field sets, with and without skip_bad_rows.
// dtune::Error is the expected outcome of bad input; a crash, a sanitizer report, any other
// exception or a hang (-timeout) is a bug. Build/run: see CMakeLists.txt here.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/data/row_reader.h"
#include "dtune/core/sha256.h"

namespace {

// Field sets: the medical-o1 export, and a subset in another order (a row good for the first
// is good for the second, which the cross-checks below rely on).
const std::vector<std::string> kAllFields = {"Question", "Complex_CoT", "Response"};
const std::vector<std::string> kSubFields = {"Response", "Question"};

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_row_reader: invariant broken: %s\n", what);
  std::abort();
}

// The input lives in an in-memory file (memfd), which RowReader opens by its /proc/self/fd path:
// nothing is left in /tmp when libFuzzer ends a run with _Exit() or on a crash.
int input_fd() {
  static const int fd = ::memfd_create("fuzz_row_reader", 0);
  check(fd >= 0, "memfd_create");
  return fd;
}

const std::string& input_path() {
  static const std::string path = "/proc/self/fd/" + std::to_string(input_fd());
  return path;
}

void write_input(std::string_view bytes) {
  check(::ftruncate(input_fd(), 0) == 0, "ftruncate of the input memfd");
  check(::pwrite(input_fd(), bytes.data(), bytes.size(), 0) ==
            static_cast<ssize_t>(bytes.size()),
        "short write to the input memfd");
}

struct Outcome {
  std::vector<dtune::Row> rows;  // good rows, in order
  int64_t skipped = 0;
  bool threw = false;            // dtune::Error (any other exception escapes: a bug)
};

// Reads every row; checks what holds for any input that reads to the end.
Outcome read_all(std::string_view bytes, const std::vector<std::string>& fields, bool skip) {
  Outcome out;
  try {
    dtune::RowReader reader(input_path(), dtune::RowReaderOptions{fields, skip});
    check(reader.file_size() == static_cast<int64_t>(bytes.size()), "file_size");
    dtune::Row row;
    while (reader.next(row)) {
      check(row.values.size() == fields.size(), "one value per field");
      for (const auto& v : row.values) check(dtune::find_invalid_utf8(v) == -1, "UTF-8 value");
      check(out.rows.empty() || row.number > out.rows.back().number, "row numbers increase");
      check(row.number == reader.rows_read() + reader.skipped_rows(), "row number");
      out.rows.push_back(row);
      check(static_cast<int64_t>(out.rows.size()) == reader.rows_read(), "rows_read");
      // A row takes >= 2 bytes of text; a gzip/zstd input (byte_source.h) expands, so there not.
      check(reader.compression() != dtune::Compression::kNone || out.rows.size() <= bytes.size(),
            "more rows than bytes");
    }
    out.skipped = reader.skipped_rows();
    check(skip || out.skipped == 0, "skipped rows without skip_bad_rows");
    check(reader.bytes_read() <= reader.file_size(), "bytes_read");
    dtune::Sha256 hasher;
    hasher.update(bytes);
    check(reader.sha256() == hasher.hex_digest(), "sha256 of the whole file");
  } catch (const dtune::Error&) {
    out.threw = true;
  }
  return out;
}

bool same_rows(const dtune::Row& a, const dtune::Row& b) {
  return a.number == b.number && a.values == b.values;
}

// Normal mode returns the rows before the first bad one; skip mode returns those same rows first.
void check_skip_mode(const Outcome& normal, const Outcome& skip) {
  check(normal.rows.size() <= skip.rows.size(), "skip mode lost rows");
  for (size_t i = 0; i < normal.rows.size(); ++i) {
    check(same_rows(normal.rows[i], skip.rows[i]), "skip mode changed a row");
  }
  if (!normal.threw) {
    check(!skip.threw && skip.skipped == 0, "skip mode disagrees on a good file");
    check(skip.rows.size() == normal.rows.size(), "skip mode row count on a good file");
  }
}

// In skip mode only file-level errors throw, and they do not depend on the fields; every row
// good for kAllFields is good for kSubFields, with the values picked in that order.
void check_field_sets(const Outcome& all, const Outcome& sub) {
  check(all.threw == sub.threw, "file-level error depends on the fields");
  if (!all.threw) {
    check(all.rows.size() + all.skipped == sub.rows.size() + sub.skipped, "row totals");
  }
  size_t j = 0;
  for (const auto& row : all.rows) {
    while (j < sub.rows.size() && sub.rows[j].number < row.number) ++j;
    check(j < sub.rows.size() && sub.rows[j].number == row.number, "good row lost");
    check(sub.rows[j].values[0] == row.values[2] && sub.rows[j].values[1] == row.values[0],
          "field values differ between field sets");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // warn() prints on rank 0 only: as rank 1, skip_bad_rows warnings do not flood the output.
  dtune::log::set_rank(1, 2);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  write_input(bytes);
  const Outcome all = read_all(bytes, kAllFields, false);
  const Outcome all_skip = read_all(bytes, kAllFields, true);
  const Outcome sub = read_all(bytes, kSubFields, false);
  const Outcome sub_skip = read_all(bytes, kSubFields, true);
  check_skip_mode(all, all_skip);
  check_skip_mode(sub, sub_skip);
  check_field_sets(all_skip, sub_skip);
  return 0;
}
