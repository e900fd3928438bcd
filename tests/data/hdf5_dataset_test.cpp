// Hdf5Writer + Hdf5Dataset: round trip of rows and attributes, the interrupted-write guarantee,
// and corrupt files (truncated, wrong dtype, non-monotonic offsets, id >= vocab, missing
// dataset, not HDF5) -> dtune::Error naming the file and dataset.
#include "dtune/data/hdf5_dataset.h"

#include <hdf5.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <filesystem>

#include "../core/recording_file_sync.h"
#include "dtune/core/error.h"
#include "synthetic_h5.h"
#include "test_files.h"

using dtune::Hdf5Dataset;

namespace {

std::string open_error(const std::string& path, const std::string& split = "train") {
  try {
    Hdf5Dataset::open(path, split);
  } catch (const dtune::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Rows 0..4 with lengths 3..7, rows 1 and 3 in eval.
std::string make_file(const dtune::test::ScratchDir& dir, const std::string& name) {
  std::vector<dtune::test::SyntheticRow> rows =
      dtune::test::make_rows({3, 4, 5, 6, 7}, {1, 2, 3, 0, 7});
  rows[1].eval = rows[3].eval = true;
  const std::string path = dir.file(name);
  dtune::test::write_synthetic_h5(path, rows);
  return path;
}

// Overwrites one element of an int dataset in place with the raw HDF5 API.
void poke(const std::string& path, const char* dataset, hsize_t index, int64_t value) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  BOOST_REQUIRE(f >= 0);
  hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
  BOOST_REQUIRE(d >= 0);
  hid_t space = H5Dget_space(d);
  const hsize_t one = 1;
  BOOST_REQUIRE(H5Sselect_hyperslab(space, H5S_SELECT_SET, &index, nullptr, &one, nullptr) >= 0);
  hid_t mem = H5Screate_simple(1, &one, nullptr);
  BOOST_REQUIRE(H5Dwrite(d, H5T_NATIVE_INT64, mem, space, H5P_DEFAULT, &value) >= 0);
  H5Sclose(mem);
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_rows_and_attributes) {
  dtune::test::ScratchDir dir("h5_roundtrip");
  const std::string path = make_file(dir, "d.h5");
  const Hdf5Dataset train = Hdf5Dataset::open(path, "train");
  const Hdf5Dataset eval = Hdf5Dataset::open(path, "eval");
  BOOST_TEST(train.num_rows() == 3);
  BOOST_TEST(eval.num_rows() == 2);
  BOOST_TEST(train.num_tokens() == 3 + 5 + 7);
  BOOST_TEST(train.read_row(2) == (std::vector<int32_t>{40, 41, 42, 43, 44, 45, 46}),
             boost::test_tools::per_element());
  BOOST_TEST(eval.read_row(1) == (std::vector<int32_t>{30, 31, 32, 33, 34, 35}),
             boost::test_tools::per_element());
  BOOST_TEST(train.prompt_length(1) == 3);
  BOOST_TEST(eval.prompt_length(0) == 2);
  BOOST_TEST(train.info().vocab_size == 1000);
  BOOST_TEST(train.info().num_train_rows == 3);
  BOOST_TEST(train.info().num_eval_rows == 2);
  BOOST_TEST(train.info().template_text == "{a}{@completion}{b}");
  BOOST_TEST(train.info().eval_fraction == 0.5);
  BOOST_CHECK_NO_THROW(train.validate_all_ids());
  BOOST_CHECK_THROW(train.read_row(3), dtune::Error);
}

BOOST_AUTO_TEST_CASE(many_rows_cross_chunk_boundaries) {
  dtune::test::ScratchDir dir("h5_chunks");
  std::vector<dtune::test::SyntheticRow> rows;
  for (int i = 0; i < 300; ++i) {  // 300 x ~700 ids: several 64 Ki-token chunks
    dtune::test::SyntheticRow r;
    for (int k = 0; k < 500 + (i * 37) % 400; ++k) r.ids.push_back((i * 1000 + k) % 50000);
    r.prompt_length = i % 10;
    rows.push_back(r);
  }
  dtune::test::write_synthetic_h5(dir.file("d.h5"), rows, 50000);
  const Hdf5Dataset d = Hdf5Dataset::open(dir.file("d.h5"), "train");
  BOOST_REQUIRE(d.num_rows() == 300);
  for (int i : {0, 1, 93, 94, 95, 211, 299}) {
    BOOST_TEST(d.read_row(i) == rows[i].ids);
    BOOST_TEST(d.prompt_length(i) == rows[i].prompt_length);
  }
}

BOOST_AUTO_TEST_CASE(interrupted_write_leaves_no_file) {
  dtune::test::ScratchDir dir("h5_interrupt");
  const std::string path = dir.file("out.h5");
  std::string temp;
  {
    dtune::Hdf5Writer writer(path);
    temp = writer.temp_path();
    const std::vector<int32_t> ids = {1, 2, 3};
    writer.append(false, ids, 1);
    BOOST_TEST(std::filesystem::exists(temp));
    // no finish(): as if a bad row threw here
  }
  BOOST_TEST(!std::filesystem::exists(temp));
  BOOST_TEST(!std::filesystem::exists(path));
  BOOST_TEST(std::filesystem::is_empty(dir.path()));
}

BOOST_AUTO_TEST_CASE(finish_fsyncs_the_file_before_the_rename_and_the_folder_after) {
  dtune::test::ScratchDir dir("h5_durable");
  const std::string path = dir.file("out.h5");
  dtune::test::RecordingFileSync rec;
  std::string temp;
  {
    dtune::Hdf5Writer writer(path);
    temp = writer.temp_path();
  }
  rec.calls.clear();
  const std::string made = make_file(dir, "out.h5");
  const std::vector<std::string> want = {"sync_file " + temp, "rename " + temp + " " + path,
                                         "sync_dir " + dir.path().string()};
  BOOST_TEST(rec.calls == want, boost::test_tools::per_element());
  BOOST_CHECK_NO_THROW(Hdf5Dataset::open(made, "train"));
}

BOOST_AUTO_TEST_CASE(failed_fsync_in_finish_publishes_nothing) {
  dtune::test::ScratchDir dir("h5_fsync_fail");
  const std::string path = dir.file("out.h5");
  dtune::test::RecordingFileSync rec;
  rec.fail_next("sync_file ", EIO);
  try {
    make_file(dir, "out.h5");
    BOOST_FAIL("expected an error");
  } catch (const dtune::Error& e) {
    BOOST_TEST_INFO(e.what());
    BOOST_TEST(contains(e.what(), "cannot fsync " + path + ".tmp-"));
    BOOST_TEST(contains(e.what(), "Input/output error"));
  }
  BOOST_TEST(std::filesystem::is_empty(dir.path()));  // no final file, no temp file
}

BOOST_AUTO_TEST_CASE(truncated_file_is_reported) {
  dtune::test::ScratchDir dir("h5_trunc");
  const std::string path = make_file(dir, "d.h5");
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size / 2);
  const std::string msg = open_error(path);
  BOOST_TEST_INFO(msg);
  BOOST_TEST(contains(msg, path));
  BOOST_TEST(contains(msg, "truncated or corrupt"));
}

BOOST_AUTO_TEST_CASE(not_hdf5_and_missing_file_are_reported) {
  dtune::test::ScratchDir dir("h5_nothdf5");
  dtune::test::write_text(dir.file("x.h5"), "[{\"Question\": \"json, not hdf5\"}]");
  BOOST_TEST(contains(open_error(dir.file("x.h5")), "not an HDF5 file"));
  BOOST_TEST(contains(open_error(dir.file("absent.h5")), "no such file"));
}

BOOST_AUTO_TEST_CASE(wrong_dtype_is_reported) {
  dtune::test::ScratchDir dir("h5_dtype");
  const std::string path = make_file(dir, "d.h5");
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  BOOST_REQUIRE(f >= 0);
  BOOST_REQUIRE(H5Ldelete(f, "/train/tokens", H5P_DEFAULT) >= 0);
  const hsize_t n = 15;
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(f, "/train/tokens", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                       H5P_DEFAULT);
  BOOST_REQUIRE(d >= 0);
  H5Dclose(d);
  H5Sclose(space);
  H5Fclose(f);
  const std::string msg = open_error(path);
  BOOST_TEST_INFO(msg);
  BOOST_TEST(contains(msg, path + ": /train/tokens: wrong dtype; expected int32"));
  BOOST_CHECK_NO_THROW(Hdf5Dataset::open(path, "eval"));  // the other split is intact
}

BOOST_AUTO_TEST_CASE(missing_dataset_is_reported) {
  dtune::test::ScratchDir dir("h5_missing");
  const std::string path = make_file(dir, "d.h5");
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  BOOST_REQUIRE(H5Ldelete(f, "/eval/prompt_lengths", H5P_DEFAULT) >= 0);
  H5Fclose(f);
  BOOST_TEST(contains(open_error(path, "eval"), "/eval/prompt_lengths: dataset is missing"));
}

BOOST_AUTO_TEST_CASE(non_monotonic_offsets_are_reported) {
  dtune::test::ScratchDir dir("h5_offsets");
  const std::string path = make_file(dir, "d.h5");
  poke(path, "/train/offsets", 2, 1);  // offsets 0,3,1,... : row 1 has length -2
  const std::string msg = open_error(path);
  BOOST_TEST_INFO(msg);
  BOOST_TEST(contains(msg, path + ": /train/offsets is not monotonic at row 1"));
}

BOOST_AUTO_TEST_CASE(id_at_or_above_vocab_size_is_reported) {
  dtune::test::ScratchDir dir("h5_vocab");
  const std::string path = make_file(dir, "d.h5");
  poke(path, "/train/tokens", 4, 1000);  // row 1 (offset 3..8), vocab_size 1000
  const Hdf5Dataset d = Hdf5Dataset::open(path, "train");
  BOOST_CHECK_NO_THROW(d.read_row(0));
  try {
    d.read_row(1);
    BOOST_FAIL("expected an error");
  } catch (const dtune::Error& e) {
    BOOST_TEST_INFO(e.what());
    BOOST_TEST(contains(e.what(), path + ": /train/tokens[4] (row 1) = 1000 is not a token id"));
  }
  BOOST_CHECK_THROW(d.validate_all_ids(), dtune::Error);
}

BOOST_AUTO_TEST_CASE(missing_attribute_and_wrong_version_are_reported) {
  dtune::test::ScratchDir dir("h5_attrs");
  const std::string path = make_file(dir, "d.h5");
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  BOOST_REQUIRE(H5Adelete(f, "vocab_size") >= 0);
  H5Fclose(f);
  BOOST_TEST(contains(open_error(path), "attribute 'vocab_size' is missing"));
}
