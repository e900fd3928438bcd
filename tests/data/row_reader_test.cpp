// RowReader: JSON array and JSON Lines streaming, every error kind with row/line/field in the
// message, --skip-bad-rows counting, and the streaming sha256 of the whole file.
#include "dtune/data/row_reader.h"

#include <boost/test/unit_test.hpp>

#include "dtune/core/error.h"
#include "test_files.h"

using dtune::Error;
using dtune::Row;
using dtune::RowReader;
using dtune::RowReaderOptions;

namespace {

const std::vector<std::string> kFields = {"Question", "Response"};

std::vector<Row> read_all(const std::string& path, bool skip, int64_t* skipped = nullptr) {
  RowReader reader(path, RowReaderOptions{kFields, skip});
  std::vector<Row> rows;
  Row row;
  while (reader.next(row)) rows.push_back(row);
  if (skipped != nullptr) *skipped = reader.skipped_rows();
  return rows;
}

// The message of the Error that reading path throws ("" if none).
std::string error_of(const std::string& path) {
  try {
    read_all(path, false);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(reads_json_array_with_nested_values_and_escapes) {
  dtune::test::ScratchDir dir("rr_array");
  const std::string path = dir.file("a.json");
  dtune::test::write_text(path,
      "\xef\xbb\xbf [\n"
      "  {\"Question\": \"q1 {not a brace} \\\"quoted\\\" ] ,\", \"Extra\": [1, {\"x\": \"]\"}],\n"
      "   \"Response\": \"r1 \\u00e9\\n\"},\n"
      "  {\"Response\": \"r2\", \"Question\": \"\xc3\xa9t\xc3\xa9\"}\n"
      "]\n");
  RowReader reader(path, RowReaderOptions{kFields, false});
  BOOST_TEST(!reader.is_json_lines());
  Row row;
  BOOST_REQUIRE(reader.next(row));
  BOOST_TEST(row.number == 1);
  BOOST_TEST(row.values[0] == "q1 {not a brace} \"quoted\" ] ,");
  BOOST_TEST(row.values[1] == "r1 \xc3\xa9\n");
  BOOST_REQUIRE(reader.next(row));
  BOOST_TEST(row.number == 2);
  BOOST_TEST(row.values[0] == "\xc3\xa9t\xc3\xa9");
  BOOST_TEST(row.values[1] == "r2");
  BOOST_TEST(!reader.next(row));
  // sha256 covers every byte of the file, BOM and trailing newline included.
  BOOST_TEST(reader.sha256() == dtune::sha256_file(path));
}

BOOST_AUTO_TEST_CASE(reads_json_lines_and_skips_blank_lines) {
  dtune::test::ScratchDir dir("rr_jsonl");
  const std::string path = dir.file("a.jsonl");
  dtune::test::write_text(path,
                          "{\"Question\": \"a\", \"Response\": \"b\"}\n\n  \r\n"
                          "{\"Question\": \"c\", \"Response\": \"d\"}");  // no final newline
  RowReader reader(path, RowReaderOptions{kFields, false});
  BOOST_TEST(reader.is_json_lines());
  std::vector<Row> rows = read_all(path, false);
  BOOST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(rows[1].number == 2);
  BOOST_TEST(rows[1].values[0] == "c");
}

BOOST_AUTO_TEST_CASE(empty_array_has_no_rows) {
  dtune::test::ScratchDir dir("rr_emptyarr");
  dtune::test::write_text(dir.file("a.json"), " [ ] \n");
  BOOST_TEST(read_all(dir.file("a.json"), false).empty());
}

BOOST_AUTO_TEST_CASE(each_error_names_file_row_line_and_field) {
  dtune::test::ScratchDir dir("rr_errors");
  struct Case {
    std::string name, bytes, expect1, expect2;
  };
  const std::string good = "{\"Question\": \"q\", \"Response\": \"r\"}";
  const std::vector<Case> cases = {
      {"missing.json", "[" + good + ",\n{\"Question\": \"q\"}]", "row 2 (line 2)",
       "field \"Response\" is missing"},
      {"nonstring.json", "[" + good + ", " + good + ",\n\n{\"Question\": 7, \"Response\": \"r\"}]",
       "row 3 (line 3)", "field \"Question\" is a number, expected a string"},
      {"malformed.jsonl", good + "\n{\"Question\": \"q\" \"Response\": \"r\"}\n", "row 2 (line 2)",
       "malformed JSON"},
      {"utf8.jsonl", good + "\n" + good + "\n{\"Question\": \"bad \xff\", \"Response\": \"r\"}\n",
       "row 3 (line 3)", "invalid UTF-8 at byte 18"},
      {"notobject.json", "[" + good + ", 42]", "row 2", "expected a JSON object, found a number"},
      {"comma.json", "[" + good + ", ]", "row 2", "empty element"},
      {"empty.json", "  \n ", "empty.json", "the file is empty"},
      {"truncated.json", "[" + good + ", {\"Question\": \"q", "truncated.json",
       "the file is truncated"},
      {"garbage.json", "hello", "garbage.json", "starts with 'h'"},
      {"trailing.json", "[" + good + "] x", "garbage", "after the closing ']'"},
  };
  for (const Case& c : cases) {
    const std::string path = dir.file(c.name);
    dtune::test::write_text(path, c.bytes);
    const std::string msg = error_of(path);
    BOOST_TEST_INFO("case " << c.name << ": " << msg);
    BOOST_TEST(contains(msg, path));
    BOOST_TEST(contains(msg, c.expect1 == "garbage" ? "line 1" : c.expect1));
    BOOST_TEST(contains(msg, c.expect2));
  }
}

BOOST_AUTO_TEST_CASE(skip_bad_rows_counts_and_keeps_going) {
  dtune::test::ScratchDir dir("rr_skip");
  const std::string path = dir.file("mixed.jsonl");
  dtune::test::write_text(path,
                          "{\"Question\": \"1\", \"Response\": \"a\"}\n"
                          "{\"Question\": \"2\"}\n"
                          "{broken\n"
                          "{\"Question\": \"4\", \"Response\": null}\n"
                          "{\"Question\": \"5\", \"Response\": \"e\"}\n");
  int64_t skipped = 0;
  std::vector<Row> rows = read_all(path, true, &skipped);
  BOOST_TEST(skipped == 3);
  BOOST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(rows[0].number == 1);
  BOOST_TEST(rows[1].number == 5);  // numbering counts the skipped rows
  BOOST_TEST(rows[1].values[0] == "5");
  // Without the option the first bad row stops it and suggests the option.
  BOOST_TEST(contains(error_of(path), "--skip-bad-rows"));
}

// Found with tools/fuzz_row_reader: nlohmann throws out_of_range (not parse_error) for a number
// beyond double range, even in a field the template ignores; it must be a bad row like any other.
BOOST_AUTO_TEST_CASE(number_overflow_is_a_bad_row) {
  dtune::test::ScratchDir dir("rr_overflow");
  const std::string path = dir.file("overflow.jsonl");
  dtune::test::write_text(path,
                          "{\"Question\": \"1\", \"Response\": \"a\", \"Score\": 1e400}\n"
                          "{\"Question\": \"2\", \"Response\": \"b\", \"Id\": -" +
                              std::string(400, '9') + "}\n"
                          "{\"Question\": \"3\", \"Response\": \"c\"}\n");
  const std::string msg = error_of(path);
  BOOST_TEST(contains(msg, "row 1 (line 1)"));
  BOOST_TEST(contains(msg, "number overflow"));
  int64_t skipped = 0;
  std::vector<Row> rows = read_all(path, true, &skipped);
  BOOST_TEST(skipped == 2);
  BOOST_REQUIRE(rows.size() == 1u);
  BOOST_TEST(rows[0].number == 3);
}

BOOST_AUTO_TEST_CASE(rows_longer_than_the_read_buffer_stream_intact) {
  dtune::test::ScratchDir dir("rr_big");
  const std::string path = dir.file("big.json");
  std::string big(3 << 20, 'x');  // 3 MiB value: spans several 1 MiB reads
  big[12345] = '}';
  dtune::test::write_text(path, "[{\"Question\": \"" + big + "\", \"Response\": \"r\"}]");
  std::vector<Row> rows = read_all(path, false);
  BOOST_REQUIRE(rows.size() == 1u);
  BOOST_TEST(rows[0].values[0] == big);
}

BOOST_AUTO_TEST_CASE(utf8_validator_rejects_overlong_surrogates_and_truncation) {
  BOOST_TEST(dtune::find_invalid_utf8("plain \xc3\xa9 \xe2\x96\x81 \xf0\x9f\x98\x80") == -1);
  BOOST_TEST(dtune::find_invalid_utf8("ab\xc0\xaf") == 2);          // overlong '/'
  BOOST_TEST(dtune::find_invalid_utf8("\xed\xa0\x80") == 0);        // UTF-16 surrogate
  BOOST_TEST(dtune::find_invalid_utf8("xyz\xe2\x96") == 3);         // cut short
  BOOST_TEST(dtune::find_invalid_utf8("\xf4\x90\x80\x80") == 0);    // above U+10FFFF
}
