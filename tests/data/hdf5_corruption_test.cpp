// Corrupt pretokenized files, leveldb corruption_test style: bytes flipped in a header
// attribute, a string attribute, an index dataset and a token chunk of a real Hdf5Writer file
// each give "FILE: corrupt (checksum mismatch in WHAT); re-run `dtune pretokenize`", never a
// crash or different ids. Files written before the checksums (no Fletcher-32 filter, HDF5 1.8
// format: tests/fixtures/data/legacy_v1_nofilter.h5) still read.
#include <hdf5.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dtune/core/error.h"
#include "dtune/data/hdf5_dataset.h"
#include "synthetic_h5.h"
#include "test_files.h"

using dtune::Hdf5Dataset;

namespace {

// 300 rows of 500..899 ids (about 2.5 tokens chunks); every 7th row (from 3) is eval.
std::vector<dtune::test::SyntheticRow> many_rows() {
  std::vector<dtune::test::SyntheticRow> rows;
  for (int i = 0; i < 300; ++i) {
    dtune::test::SyntheticRow r;
    for (int k = 0; k < 500 + (i * 37) % 400; ++k) r.ids.push_back((i * 1000 + k) % 50000);
    r.prompt_length = i % 10;
    r.eval = i % 7 == 3;
    rows.push_back(r);
  }
  return rows;
}

std::vector<std::vector<int32_t>> train_ids(const std::vector<dtune::test::SyntheticRow>& rows) {
  std::vector<std::vector<int32_t>> out;
  for (const auto& r : rows) {
    if (!r.eval) out.push_back(r.ids);
  }
  return out;
}

struct Chunk {
  haddr_t address = 0;  // byte offset of the stored (filtered) chunk in the file
  hsize_t size = 0;     // stored bytes
  hsize_t first = 0;    // index of its first element
};

// Where chunk `index` of a 1-D dataset lies in the file (H5Dget_chunk_info, HDF5 >= 1.10.5).
Chunk chunk_location(const std::string& path, const char* dataset, hsize_t index) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  BOOST_REQUIRE(f >= 0);
  hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
  BOOST_REQUIRE(d >= 0);
  hid_t space = H5Dget_space(d);
  Chunk c;
  unsigned mask = 0;
  BOOST_REQUIRE(H5Dget_chunk_info(d, space, index, &c.first, &mask, &c.address, &c.size) >= 0);
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
  return c;
}

// XORs the byte at offset with 0x5a in place.
void flip_byte(const std::string& path, std::streamoff offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  BOOST_REQUIRE(f.good());
  f.seekg(offset);
  char b = 0;
  f.read(&b, 1);
  b = static_cast<char>(b ^ 0x5a);
  f.seekp(offset);
  f.write(&b, 1);
  BOOST_REQUIRE(f.good());
}

// Offset of the first occurrence of bytes in the file (fails the test when absent).
std::streamoff find_bytes(const std::string& path, const std::string& bytes) {
  const std::string data = dtune::test::read_text(path);
  const size_t at = data.find(bytes);
  BOOST_REQUIRE(at != std::string::npos);
  BOOST_REQUIRE(data.find(bytes, at + 1) == std::string::npos);  // the flip hits what we mean
  return static_cast<std::streamoff>(at);
}

// The error of opening the train split and reading every row; "" when all of it read.
std::string read_all_error(const std::string& path) {
  try {
    const Hdf5Dataset d = Hdf5Dataset::open(path, "train");
    d.validate_all_ids();
  } catch (const dtune::Error& e) {
    return e.what();
  }
  return "";
}

std::string corrupt_message(const std::string& path, const std::string& what) {
  return path + ": corrupt (checksum mismatch in " + what + "); re-run `dtune pretokenize`";
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

struct CorruptFile {
  dtune::test::ScratchDir dir{"h5_corrupt"};
  std::vector<dtune::test::SyntheticRow> rows = many_rows();
  std::string path = dir.file("d.h5");
  CorruptFile() { dtune::test::write_synthetic_h5(path, rows, 50000); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(every_dataset_has_the_fletcher32_filter) {
  CorruptFile c;
  hid_t f = H5Fopen(c.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  BOOST_REQUIRE(f >= 0);
  for (const char* name : {"/train/tokens", "/train/offsets", "/train/prompt_lengths",
                           "/eval/tokens", "/eval/offsets", "/eval/prompt_lengths"}) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    BOOST_REQUIRE(d >= 0);
    hid_t dcpl = H5Dget_create_plist(d);
    unsigned flags = 0;
    size_t n = 0;
    BOOST_TEST_INFO(name);
    BOOST_TEST(H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &n, nullptr, 0, nullptr,
                                    nullptr) >= 0);
    // Last in the pipeline: the checksum is over the compressed bytes stored on disk.
    const int nfilters = H5Pget_nfilters(dcpl);
    BOOST_TEST(H5Pget_filter2(dcpl, static_cast<unsigned>(nfilters - 1), &flags, &n, nullptr, 0,
                              nullptr, nullptr) == H5Z_FILTER_FLETCHER32);
    H5Pclose(dcpl);
    H5Dclose(d);
  }
  H5Fclose(f);
  BOOST_TEST(read_all_error(c.path) == "");
}

BOOST_AUTO_TEST_CASE(flipped_byte_in_a_token_chunk_names_the_chunk) {
  CorruptFile c;
  const Chunk chunk = chunk_location(c.path, "/train/tokens", 1);
  BOOST_REQUIRE(chunk.first == static_cast<hsize_t>(dtune::Hdf5Writer::kTokenChunk));
  flip_byte(c.path, static_cast<std::streamoff>(chunk.address + chunk.size / 2));

  const Hdf5Dataset d = Hdf5Dataset::open(c.path, "train");  // the index is intact
  const auto want = train_ids(c.rows);
  int corrupt_rows = 0;
  int64_t start = 0;  // first token of row r
  for (int64_t r = 0; r < d.num_rows(); start += d.row_length(r), ++r) {
    const int64_t chunk = dtune::Hdf5Writer::kTokenChunk;  // row r overlaps [chunk, 2 * chunk)?
    const bool in_chunk1 = start < 2 * chunk && start + d.row_length(r) > chunk;
    try {
      const std::vector<int32_t> ids = d.read_row(r);
      BOOST_TEST(!in_chunk1);            // a row in the bad chunk never reads
      BOOST_TEST(ids == want[static_cast<size_t>(r)]);  // the others read unchanged
    } catch (const dtune::Error& e) {
      ++corrupt_rows;
      BOOST_TEST_INFO(e.what());
      BOOST_TEST(in_chunk1);
      BOOST_TEST(starts_with(e.what(), corrupt_message(c.path, "/train/tokens chunk 1")));
    }
  }
  BOOST_TEST(corrupt_rows > 50);  // about 65536 / 700 rows live in chunk 1
  BOOST_TEST(starts_with(read_all_error(c.path), corrupt_message(c.path, "/train/tokens chunk 1")));
}

BOOST_AUTO_TEST_CASE(flipped_byte_in_an_index_dataset_is_reported_at_open) {
  CorruptFile c;
  const Chunk chunk = chunk_location(c.path, "/train/offsets", 0);
  flip_byte(c.path, static_cast<std::streamoff>(chunk.address + chunk.size / 2));
  const std::string msg = read_all_error(c.path);
  BOOST_TEST_INFO(msg);
  BOOST_TEST(starts_with(msg, corrupt_message(c.path, "/train/offsets chunk 0")));

  CorruptFile e;  // the eval split's prompt lengths: train still opens, eval does not
  const Chunk pl = chunk_location(e.path, "/eval/prompt_lengths", 0);
  flip_byte(e.path, static_cast<std::streamoff>(pl.address + pl.size / 2));
  BOOST_TEST(read_all_error(e.path) == "");
  try {
    Hdf5Dataset::open(e.path, "eval");
    BOOST_FAIL("expected an error");
  } catch (const dtune::Error& err) {
    BOOST_TEST_INFO(err.what());
    BOOST_TEST(starts_with(err.what(), corrupt_message(e.path, "/eval/prompt_lengths chunk 0")));
  }
}

BOOST_AUTO_TEST_CASE(flipped_byte_in_a_header_attribute_is_reported) {
  {  // the attribute's name, in the root object header (the crash report of issue 17)
    CorruptFile c;
    flip_byte(c.path, find_bytes(c.path, "tokenizer_sha256") + 3);
    const std::string msg = read_all_error(c.path);
    BOOST_TEST_INFO(msg);
    BOOST_TEST(starts_with(msg, corrupt_message(c.path, "the root attributes (format_version)")));
    BOOST_CHECK_THROW(Hdf5Dataset::read_info(c.path), dtune::Error);
  }
  {  // a number: vocab_size's value follows its name in the same header
    CorruptFile c;
    flip_byte(c.path, find_bytes(c.path, std::string("vocab_size\0", 11)) + 16);
    BOOST_TEST(starts_with(read_all_error(c.path),
                           corrupt_message(c.path, "the root attributes (format_version)")));
  }
  {  // a string's bytes, kept outside the header in HDF5's (unchecksummed) global heap
    CorruptFile c;
    flip_byte(c.path, find_bytes(c.path, "{a}{@completion}{b}") + 5);
    const std::string msg = read_all_error(c.path);
    BOOST_TEST_INFO(msg);
    BOOST_TEST(starts_with(msg, corrupt_message(c.path, "the root string attributes")));
  }
}

BOOST_AUTO_TEST_CASE(flipped_superblock_byte_is_reported) {
  CorruptFile c;
  flip_byte(c.path, 20);  // inside the version 3 superblock (48 bytes, checksummed)
  BOOST_TEST(starts_with(read_all_error(c.path), corrupt_message(c.path, "the file's header")));
}

BOOST_AUTO_TEST_CASE(many_random_flips_never_crash_or_change_ids) {
  // 200 random bit flips, as in the report, 20 times: every outcome is a dtune::Error
  // naming the file (or, if every flip missed the data read, the right ids).
  for (unsigned seed = 1; seed <= 20; ++seed) {
    CorruptFile c;
    std::string bytes = dtune::test::read_text(c.path);
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL;
    for (int k = 0; k < 200; ++k) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64
      bytes[x % bytes.size()] ^= static_cast<char>(1 << (x >> 32) % 8);
    }
    dtune::test::write_text(c.path, bytes);
    try {
      const Hdf5Dataset d = Hdf5Dataset::open(c.path, "train");
      const auto want = train_ids(c.rows);
      for (int64_t r = 0; r < d.num_rows(); ++r) {
        BOOST_TEST(d.read_row(r) == want[static_cast<size_t>(r)]);
      }
    } catch (const dtune::Error& e) {
      BOOST_TEST_INFO("seed " << seed << ": " << e.what());
      BOOST_TEST(starts_with(e.what(), c.path + ": "));
    }
  }
}

BOOST_AUTO_TEST_CASE(files_written_before_checksums_still_read) {
  // Written by the writer before issue 17 (no Fletcher-32, 1.8 format, no string digest):
  // rows i = 0..4 of ids 10*i + k (k < 3 + i), prompt i % 3, rows 1 and 3 in eval.
  const std::string path = std::string(DTUNE_TEST_DATA) + "/data/legacy_v1_nofilter.h5";
  const Hdf5Dataset train = Hdf5Dataset::open(path, "train");
  const Hdf5Dataset eval = Hdf5Dataset::open(path, "eval");
  BOOST_REQUIRE(train.num_rows() == 3);
  BOOST_REQUIRE(eval.num_rows() == 2);
  BOOST_TEST(train.read_row(2) == (std::vector<int32_t>{40, 41, 42, 43, 44, 45, 46}),
             boost::test_tools::per_element());
  BOOST_TEST(eval.read_row(1) == (std::vector<int32_t>{30, 31, 32, 33, 34, 35}),
             boost::test_tools::per_element());
  BOOST_TEST(train.prompt_length(1) == 2);
  BOOST_TEST(eval.prompt_length(0) == 1);
  BOOST_TEST(train.info().dtune_version == "legacy");
  BOOST_TEST(train.info().vocab_size == 1000);
}
