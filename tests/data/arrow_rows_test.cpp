// Parquet and Arrow inputs: files pyarrow writes from data/medical_sample.json (template rows)
// and data/medical_chat_sample.jsonl (messages) -- Parquet with several row groups, with
// large_string / large_list columns, the Arrow IPC file and stream formats, a `datasets`
// save_to_disk folder -- give the same rows as the JSON (scripts/make_arrow_inputs.py writes
// them with the venv's pyarrow; scripts/make_datasets_folder.py writes a folder with `datasets`
// itself); a truncated Parquet file and a column of the wrong type are
// errors naming the file; pretokenize of a Parquet file writes the JSON file's ids.
#include "dtune/data/arrow_rows.h"

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>

#include "dtune/core/error.h"
#include "dtune/data/hdf5_dataset.h"
#include "dtune/data/pretokenizer.h"
#include "dtune/data/row_source.h"
#include "test_files.h"

namespace {

const std::string kRoot = DTUNE_SOURCE_DIR;
const std::string kData = DTUNE_TEST_DATA;

void make_inputs(const std::string& rows, const std::string& dir) {
  const std::string cmd = dtune::str(DTUNE_PYTHON, " ", kRoot, "/scripts/make_arrow_inputs.py ", rows, " ", dir);
  BOOST_REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd << " failed (is pyarrow in .venv? scripts/setup.sh)");
}

std::vector<dtune::Row> read_all(const std::string& path, const dtune::RowReaderOptions& options) {
  auto source = dtune::open_row_source(path, options);
  std::vector<dtune::Row> rows;
  dtune::Row row;
  while (source->next(row)) rows.push_back(row);
  return rows;
}

void check_same_rows(const std::vector<dtune::Row>& got, const std::vector<dtune::Row>& want) {
  BOOST_REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST_CONTEXT("row " << i) {
      BOOST_TEST(got[i].number == want[i].number);
      BOOST_TEST(got[i].values == want[i].values, boost::test_tools::per_element());
      BOOST_REQUIRE(got[i].messages.size() == want[i].messages.size());
      for (size_t k = 0; k < got[i].messages.size(); ++k) {
        BOOST_TEST(got[i].messages[k].role == want[i].messages[k].role);
        BOOST_TEST(got[i].messages[k].content == want[i].messages[k].content);
      }
      BOOST_TEST(got[i].first_trained == want[i].first_trained);
    }
  }
}

using dtune::test::contains;
using dtune::test::error_of;

const char* const kFiles[] = {"rows.parquet", "rows_large.parquet", "rows.arrow", "rows_stream.arrow", "ds"};

}  // namespace

BOOST_AUTO_TEST_CASE(pyarrow_files_give_the_json_rows_template_fields) {
  dtune::test::ScratchDir dir("arrow_template");
  const std::string json = kRoot + "/data/medical_sample.json";
  make_inputs(json, dir.path().string());
  const dtune::RowReaderOptions options{{"Question", "Complex_CoT", "Response"}};
  const auto want = read_all(json, options);
  BOOST_TEST(want.size() == 40u);
  for (const char* f : kFiles) {
    BOOST_TEST_CONTEXT(f) { check_same_rows(read_all(dir.file(f), options), want); }
  }
  BOOST_TEST(std::string(dtune::input_kind_name(dtune::detect_input_kind(dir.file("rows.parquet")))) == "Parquet");
  BOOST_TEST(std::string(dtune::input_kind_name(dtune::detect_input_kind(dir.file("rows.arrow")))) == "Arrow IPC file");
  BOOST_TEST(std::string(dtune::input_kind_name(dtune::detect_input_kind(dir.file("rows_stream.arrow")))) == "Arrow IPC stream");
  BOOST_TEST(std::string(dtune::input_kind_name(dtune::detect_input_kind(dir.file("ds")))) == "datasets folder");
  const std::vector<std::string> columns = {"Question", "Complex_CoT", "Response"};
  BOOST_TEST(dtune::first_row_fields(dir.file("rows.parquet")) == columns, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(pyarrow_files_give_the_json_rows_messages) {
  dtune::test::ScratchDir dir("arrow_messages");
  const std::string json = kRoot + "/data/medical_chat_sample.jsonl";
  make_inputs(json, dir.path().string());
  dtune::RowReaderOptions options;
  options.format = dtune::RowFormat::kMessages;
  const auto want = read_all(json, options);
  BOOST_TEST(want.size() == 16u);
  for (const char* f : kFiles) {
    BOOST_TEST_CONTEXT(f) { check_same_rows(read_all(dir.file(f), options), want); }
  }
}

// A folder written by the `datasets` package itself (Dataset.from_list(rows).save_to_disk with
// 3 shards, scripts/make_datasets_folder.py; datasets pinned in scripts/setup.sh): template
// rows (string columns) and messages rows (list<struct<role, content>>) equal the JSON's.
BOOST_AUTO_TEST_CASE(datasets_save_to_disk_folder_gives_the_json_rows) {
  dtune::test::ScratchDir dir("arrow_datasets");
  struct Case {
    const char* json;
    dtune::RowReaderOptions options;
    size_t rows;
  };
  dtune::RowReaderOptions chat;
  chat.format = dtune::RowFormat::kMessages;
  const Case cases[] = {{"data/medical_sample.json", {{"Question", "Complex_CoT", "Response"}}, 40},
                        {"data/medical_chat_sample.jsonl", chat, 16}};
  int k = 0;
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.json) {
      const std::string json = kRoot + "/" + c.json;
      const std::string out = dir.file(dtune::str("saved", k++));
      const std::string cmd = dtune::str(DTUNE_PYTHON, " ", kRoot, "/scripts/make_datasets_folder.py ", json, " ", out);
      BOOST_REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0,
                            cmd << " failed (is datasets in .venv? scripts/setup.sh pins it)");
      BOOST_TEST(std::filesystem::exists(out + "/data-00002-of-00003.arrow"));
      BOOST_TEST(std::string(dtune::input_kind_name(dtune::detect_input_kind(out))) == "datasets folder");
      const auto want = read_all(json, c.options);
      BOOST_TEST(want.size() == c.rows);
      check_same_rows(read_all(out, c.options), want);
    }
  }
}

BOOST_AUTO_TEST_CASE(damaged_files_and_wrong_columns_name_the_file) {
  dtune::test::ScratchDir dir("arrow_bad");
  make_inputs(kRoot + "/data/medical_sample.json", dir.path().string());
  const dtune::RowReaderOptions options{{"Question", "Complex_CoT", "Response"}, /*skip_bad_rows=*/true};
  std::string msg = error_of([&] { read_all(dir.file("truncated.parquet"), options); });
  BOOST_TEST(contains(msg, dir.file("truncated.parquet") + ": not a readable Parquet file (Arrow: "), msg);
  BOOST_TEST(contains(msg, "the file is truncated, corrupt"), msg);
  msg = error_of([&] { read_all(dir.file("wrong_type.parquet"), options); });
  BOOST_TEST(contains(msg, dir.file("wrong_type.parquet") + ": column \"Question\" is int64, expected string"), msg);
  const dtune::RowReaderOptions other{{"Question", "Answer"}};
  msg = error_of([&] { read_all(dir.file("rows.parquet"), other); });
  BOOST_TEST(contains(msg, ": no column \"Answer\" (the file has: Question, Complex_CoT, Response)"), msg);
  dtune::RowReaderOptions chat;
  chat.format = dtune::RowFormat::kMessages;
  msg = error_of([&] { read_all(dir.file("rows.arrow"), chat); });
  BOOST_TEST(contains(msg, ": no column \"messages\""), msg);
  // An Arrow stream cut short.
  const std::string bytes = dtune::test::read_text(dir.file("rows_stream.arrow"));
  dtune::test::write_text(dir.file("cut.arrow"), bytes.substr(0, bytes.size() / 2));
  msg = error_of([&] { read_all(dir.file("cut.arrow"), options); });
  BOOST_TEST(contains(msg, dir.file("cut.arrow") + ": not a readable Arrow IPC stream"), msg);
  // An IPC file from a writer newer than this Arrow (metadata version 99 in its footer).
  msg = error_of([&] { read_all(dir.file("future_version.arrow"), options); });
  BOOST_TEST(contains(msg, dir.file("future_version.arrow") + ": an Arrow IPC file of metadata version V100"), msg);
  std::filesystem::create_directories(dir.file("empty_folder"));
  msg = error_of([&] { read_all(dir.file("empty_folder"), options); });
  BOOST_TEST(contains(msg, "a folder without data-*.arrow files"), msg);
}

BOOST_AUTO_TEST_CASE(pretokenize_of_parquet_equals_json) {
  dtune::test::ScratchDir dir("arrow_pretok");
  const std::string json = kRoot + "/data/medical_chat_sample.jsonl";
  make_inputs(json, dir.path().string());
  std::map<std::string, std::vector<std::vector<int32_t>>> want;  // split -> rows of the JSON run
  for (const std::string& input : {json, dir.file("rows.parquet"), dir.file("ds")}) {
    BOOST_TEST_CONTEXT(input) {
      dtune::PretokenizeOptions o;
      o.tokenizer_path = kData + "/tokenizers/deepseek_v3";
      o.input_path = input;
      o.output_path = dir.file("out.h5");
      o.eval_fraction = 0.25;
      o.show_progress = false;
      dtune::pretokenize(o);  // --format auto: the "messages" column
      for (const std::string split : {"train", "eval"}) {
        const dtune::Hdf5Dataset d = dtune::Hdf5Dataset::open(o.output_path, split);
        std::vector<std::vector<int32_t>> rows;
        for (int64_t i = 0; i < d.num_rows(); ++i) rows.push_back(d.read_row(i));
        if (input == json) want[split] = rows;
        else BOOST_TEST((rows == want[split]));
      }
    }
  }
  BOOST_TEST(want["train"].size() + want["eval"].size() == 16u);
  BOOST_TEST(want["eval"].size() > 0u);
}
