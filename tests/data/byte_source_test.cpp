// Compressed inputs: gzip and zstd files (written here with zlib / libzstd, the libraries
// `gzip` and `zstd` use) read as the same bytes and rows as the plain file, also when made of
// several members/frames and across read-buffer boundaries; truncated or corrupt files are
// errors naming the file; pretokenize of a .jsonl.gz / .jsonl.zst writes the plain file's ids.
#include "dtune/data/byte_source.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/core/sha256.h"
#include "dtune/data/hdf5_dataset.h"
#include "dtune/data/pretokenizer.h"
#include "dtune/data/row_reader.h"
#include "test_files.h"

namespace {

const std::string kData = DTUNE_TEST_DATA;

// One gzip member of bytes (gzip header, deflate, CRC trailer), as `gzip -c` writes.
std::string gzip_member(const std::string& bytes) {
  z_stream z{};
  BOOST_REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, bytes.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  BOOST_REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string zstd_frame(const std::string& bytes) {
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), bytes.data(), bytes.size(), 3);
  BOOST_REQUIRE(!ZSTD_isError(n));
  out.resize(n);
  return out;
}

std::string read_all(dtune::ByteSource& s) {
  std::string out;
  char buf[4097];  // odd size: reads end mid-line and mid-character
  for (size_t n; (n = s.read(buf, sizeof buf)) > 0;) out.append(buf, n);
  return out;
}

// 3 MB of JSONL: more than the 1 MiB read chunk, so decompression crosses buffer ends.
std::string big_jsonl() {
  std::string out;
  for (int i = 0; out.size() < (3u << 20); ++i) {
    out += nlohmann::json{{"Question", dtune::str("q", i, " \xc3\xa9\xe4\xbc\x91")},
                          {"Complex_CoT", std::string(200, static_cast<char>('a' + i % 26))},
                          {"Response", dtune::str("r", i)}}.dump();
    out += '\n';
  }
  return out;
}

using dtune::test::contains;
using dtune::test::error_of;

}  // namespace

BOOST_AUTO_TEST_CASE(gzip_and_zstd_read_as_the_plain_bytes) {
  dtune::test::ScratchDir dir("byte_source");
  const std::string text = big_jsonl();
  const std::string half = text.substr(0, text.size() / 2), rest = text.substr(text.size() / 2);
  const std::vector<std::pair<std::string, std::string>> files = {
      {"plain.jsonl", text},
      {"one.jsonl.gz", gzip_member(text)},
      {"two.jsonl.gz", gzip_member(half) + gzip_member(rest)},  // `cat a.gz b.gz`
      {"one.jsonl.zst", zstd_frame(text)},
      {"two.jsonl.zst", zstd_frame(half) + zstd_frame(rest)},
      {"gz_named.txt", gzip_member(text)},  // told by its magic bytes, not its name
  };
  for (const auto& [name, bytes] : files) {
    BOOST_TEST_CONTEXT(name) {
      dtune::test::write_text(dir.file(name), bytes);
      auto s = dtune::ByteSource::open(dir.file(name));
      BOOST_TEST((read_all(*s) == text));
      BOOST_TEST(s->sha256() == dtune::sha256_hex(bytes));  // of the file as stored
      BOOST_TEST(s->file_bytes_read() == static_cast<int64_t>(bytes.size()));
      const char* want = name.find(".zst") != std::string::npos ? "zstd" : name == "plain.jsonl" ? "none" : "gzip";
      BOOST_TEST(std::string(dtune::compression_name(s->compression())) == want);
      // The row reader sees the same rows.
      dtune::RowReader reader(dir.file(name), {{"Question", "Response"}});
      dtune::Row row;
      int64_t n = 0;
      std::string last;
      while (reader.next(row)) {
        ++n;
        last = row.values[1];
      }
      BOOST_TEST(n == static_cast<int64_t>(std::count(text.begin(), text.end(), '\n')));
      BOOST_TEST(last == dtune::str("r", n - 1));
    }
  }
}

BOOST_AUTO_TEST_CASE(truncated_and_corrupt_files_name_the_file) {
  dtune::test::ScratchDir dir("byte_source_bad");
  const std::string text = big_jsonl();
  const std::string gz = gzip_member(text), zs = zstd_frame(text);
  const auto read_file = [&](const std::string& name, const std::string& bytes) {
    dtune::test::write_text(dir.file(name), bytes);
    return error_of([&] {
      auto s = dtune::ByteSource::open(dir.file(name));
      read_all(*s);
    });
  };
  std::string msg = read_file("cut.gz", gz.substr(0, gz.size() / 2));
  BOOST_TEST(contains(msg, dir.file("cut.gz") + ": truncated gzip data"), msg);
  msg = read_file("cut.zst", zs.substr(0, zs.size() / 2));
  BOOST_TEST(contains(msg, dir.file("cut.zst") + ": truncated zstd data"), msg);
  std::string bad = gz;
  bad[bad.size() / 2] ^= 0x55;
  msg = read_file("bad.gz", bad);
  BOOST_TEST(contains(msg, dir.file("bad.gz") + ": corrupt gzip data"), msg);
  bad = zs;
  bad[bad.size() / 2] ^= 0x55;
  msg = read_file("bad.zst", bad);
  BOOST_TEST((contains(msg, dir.file("bad.zst") + ": corrupt zstd data") ||
              contains(msg, dir.file("bad.zst") + ": truncated zstd data")), msg);
  // The CRC at the end of a gzip member catches a flip that still inflates.
  bad = gz;
  bad[bad.size() - 6] ^= 0x01;
  msg = read_file("crc.gz", bad);
  BOOST_TEST(contains(msg, dir.file("crc.gz") + ": corrupt gzip data"), msg);
  // --skip-bad-rows is about rows: a damaged file still stops pretokenize.
  dtune::PretokenizeOptions o;
  o.tokenizer_path = kData + "/tokenizers/llama3_1";
  o.input_path = dir.file("cut.gz");
  o.output_path = dir.file("out.h5");
  o.skip_bad_rows = true;
  o.show_progress = false;
  BOOST_TEST(contains(error_of([&] { dtune::pretokenize(o); }), "truncated gzip data"));
  BOOST_TEST(!std::filesystem::exists(o.output_path));
}

BOOST_AUTO_TEST_CASE(pretokenize_of_compressed_files_equals_the_plain_file) {
  dtune::test::ScratchDir dir("byte_source_pretok");
  const std::string plain = dtune::test::read_text(std::string(DTUNE_SOURCE_DIR) + "/data/medical_chat_sample.jsonl");
  dtune::test::write_text(dir.file("rows.jsonl"), plain);
  dtune::test::write_text(dir.file("rows.jsonl.gz"), gzip_member(plain));
  dtune::test::write_text(dir.file("rows.jsonl.zst"), zstd_frame(plain));
  std::vector<std::vector<int32_t>> want;
  for (const char* name : {"rows.jsonl", "rows.jsonl.gz", "rows.jsonl.zst"}) {
    BOOST_TEST_CONTEXT(name) {
      dtune::PretokenizeOptions o;
      o.tokenizer_path = kData + "/tokenizers/deepseek_v3";
      o.input_path = dir.file(name);
      o.output_path = dir.file(std::string(name) + ".h5");
      o.eval_fraction = 0;
      o.show_progress = false;
      dtune::pretokenize(o);
      const dtune::Hdf5Dataset d = dtune::Hdf5Dataset::open(o.output_path, "train");
      BOOST_TEST(d.num_rows() == 16);
      BOOST_TEST(d.info().source_sha256 == dtune::sha256_file(dir.file(name)));
      for (int64_t i = 0; i < d.num_rows(); ++i) {
        if (want.size() < 16) want.push_back(d.read_row(i));
        else BOOST_TEST(d.read_row(i) == want[static_cast<size_t>(i)]);
      }
    }
  }
}
