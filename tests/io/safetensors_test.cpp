// Tests SafetensorsFile / WeightStore / save_safetensors against the Python safetensors package,
// and that every kind of corrupted file gives an Error naming the file instead of a crash.
#include "dtune/io/safetensors.h"

#include <ATen/core/Tensor.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/randn.h>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "../core/recording_file_sync.h"
#include "dtune/core/error.h"
#include "io_test_util.h"

namespace dtune {
namespace {

using nlohmann::json;
const c10::Device kCpu(c10::kCPU);

// A safetensors file from a header text and `data_bytes` bytes of data; `declared` overrides the
// header-size field (to forge bad sizes).
std::string forge(const std::string& header, size_t data_bytes, int64_t declared = -1) {
  const uint64_t n = declared >= 0 ? static_cast<uint64_t>(declared) : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + std::string(data_bytes, '\x01');
}

// Opening `bytes` must throw an Error that names the file and contains `why`.
void expect_corrupt(const std::string& bytes, const std::string& why) {
  test::TempDir dir;
  const std::string path = dir / "bad.safetensors";
  test::write_file(path, bytes);
  try {
    SafetensorsFile::open(path);
    BOOST_ERROR("no Error for case \"" << why << "\"");
  } catch (const Error& e) {
    const std::string msg = e.what();
    BOOST_CHECK_MESSAGE(msg.find(path) != std::string::npos, msg << " does not name the file");
    BOOST_CHECK_MESSAGE(msg.find(why) != std::string::npos, msg << " lacks \"" << why << "\"");
  }
}

std::string tensor_json(const std::string& dtype, const std::string& shape, uint64_t b, uint64_t e) {
  return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(b) + "," +
         std::to_string(e) + "]}";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(safetensors)

// Values written by Python safetensors (scripts/gen_io_fixtures.py) load exactly, in every dtype.
BOOST_AUTO_TEST_CASE(loads_python_fixture_exactly) {
  const std::string dir = std::string(DTUNE_TEST_DATA) + "/io/safetensors/";
  const json expected = json::parse(test::read_file(dir + "mixed_expected.json"));
  const SafetensorsFile f = SafetensorsFile::open(dir + "mixed.safetensors");
  BOOST_TEST(f.entries().size() == expected.size());
  BOOST_TEST(f.metadata().at("source") == "gen_io_fixtures");
  for (const auto& [name, want] : expected.items()) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_REQUIRE(f.contains(name));
      BOOST_TEST(f.entries().at(name).dtype == want["dtype"].get<std::string>());
      const at::Tensor t = f.load(name, c10::kDouble, kCpu);
      BOOST_TEST(t.sizes().vec() == want["shape"].get<std::vector<int64_t>>(), boost::test_tools::per_element());
      const auto values = want["values"].get<std::vector<double>>();
      BOOST_REQUIRE_EQUAL(t.numel(), static_cast<int64_t>(values.size()));
      const double* p = t.data_ptr<double>();
      for (size_t i = 0; i < values.size(); ++i) BOOST_TEST(p[i] == values[i]);  // exact: same dtype rounding
    }
  }
  // Conversion on load equals torch's own conversion (F32 -> BF16 -> F32).
  const at::Tensor f32 = f.load("f32", c10::kFloat, kCpu);
  BOOST_TEST(at::equal(f.load("f32", c10::kBFloat16, kCpu), f32.to(c10::kBFloat16)));
  BOOST_CHECK_THROW(f.load("nope", c10::kFloat, kCpu), Error);
}

BOOST_AUTO_TEST_CASE(corrupted_files_give_errors) {
  const std::string ok = tensor_json("F32", "[2]", 0, 8);
  expect_corrupt("", "too short");
  expect_corrupt("abc", "too short");
  expect_corrupt(forge("{}", 0, 200ll << 20), "exceeds");
  expect_corrupt(forge("{\"a\":" + ok + "}", 8, 4096), "larger than the file");
  expect_corrupt(forge("{\"a\":" + ok, 8), "not valid JSON");
  expect_corrupt(forge("[1,2]", 0), "must be a JSON object");
  expect_corrupt(forge("{\"a\":" + tensor_json("F33", "[2]", 0, 8) + "}", 8), "unknown dtype");
  expect_corrupt(forge("{\"a\":" + tensor_json("F32", "[-2]", 0, 8) + "}", 8), "negative dimension");
  expect_corrupt(forge("{\"a\":" + tensor_json("F32", "[4294967296,4294967296,4294967296]", 0, 8) + "}", 8),
                 "overflows");
  expect_corrupt(forge("{\"a\":" + tensor_json("F32", "[2]", 0, 8) + "}", 4), "outside the data section");
  expect_corrupt(forge("{\"a\":" + tensor_json("F32", "[2]", 8, 0) + "}", 8), "outside the data section");
  expect_corrupt(forge("{\"a\":" + tensor_json("F32", "[3]", 0, 8) + "}", 8), "need 12");
  expect_corrupt(forge("{\"a\":" + ok + ",\"b\":" + tensor_json("F32", "[2]", 4, 12) + "}", 12), "overlaps");
  expect_corrupt(forge("{\"a\":" + ok + "}", 12), "trailing garbage");
  expect_corrupt(forge("{\"a\":" + tensor_json("F32", "[2]", 4, 12) + "}", 12), "belong to no tensor");
  expect_corrupt(forge("{\"a\":" + ok + ",\"a\":" + ok + "}", 8), "twice");
  expect_corrupt(forge("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "data_offsets");
  expect_corrupt(forge("{\"__metadata__\":{\"x\":1}}", 0), "__metadata__");
  expect_corrupt(forge(std::string(100, '[') + std::string(100, ']'), 0), "nested");
  // A real file cut short anywhere fails cleanly.
  const std::string good = test::read_file(std::string(DTUNE_TEST_DATA) + "/io/safetensors/mixed.safetensors");
  for (size_t cut : {size_t{7}, size_t{100}, good.size() - 1}) {
    test::TempDir dir;
    test::write_file(dir / "cut.safetensors", good.substr(0, cut));
    BOOST_CHECK_THROW(SafetensorsFile::open(dir / "cut.safetensors"), Error);
  }
}

// save -> Python safetensors reads the same keys, dtypes, shapes, values and metadata; save ->
// SafetensorsFile round-trips bit-exactly; no temporary file is left behind.
BOOST_AUTO_TEST_CASE(save_round_trip_and_python_reads_it) {
  test::TempDir dir;
  const std::string path = dir / "out.safetensors";
  std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"z.first", at::randn({3, 4})},
      {"a.second", at::randn({5}).to(c10::kBFloat16)},
      {"m.third", at::arange(6, at::TensorOptions().dtype(c10::kLong)).reshape({2, 3})},
      {"h.half", at::randn({2, 2}).to(c10::kHalf)},
      {"t.transposed", at::randn({3, 2}).t()},  // non-contiguous input
      {"e.empty", at::randn({0, 3})}};
  save_safetensors(path, tensors, {{"note", "dtune"}});
  const SafetensorsFile f = SafetensorsFile::open(path);
  BOOST_TEST(f.metadata().at("format") == "pt");
  for (const auto& [name, t] : tensors) {
    BOOST_TEST_CONTEXT(name) { BOOST_TEST(at::equal(f.load(name, t.scalar_type(), kCpu), t)); }
  }
  const json py = json::parse(test::run_python("tests/io/oracles/read_safetensors.py '" + path + "'"));
  BOOST_TEST(py["metadata"]["format"] == "pt");
  BOOST_TEST(py["metadata"]["note"] == "dtune");
  BOOST_REQUIRE_EQUAL(py["tensors"].size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    BOOST_TEST_CONTEXT(name) {
      const json& p = py["tensors"][name];
      BOOST_TEST(p["shape"].get<std::vector<int64_t>>() == t.sizes().vec(), boost::test_tools::per_element());
      const at::Tensor d = t.to(c10::kDouble).contiguous();
      const auto values = p["values"].get<std::vector<double>>();
      BOOST_REQUIRE_EQUAL(static_cast<int64_t>(values.size()), d.numel());
      for (size_t i = 0; i < values.size(); ++i) BOOST_TEST(values[i] == d.data_ptr<double>()[i]);
    }
  }
  // Header keys keep the given order.
  const std::string bytes = test::read_file(path);
  BOOST_TEST(bytes.find("z.first") < bytes.find("a.second"));
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  BOOST_TEST(files == 1u);
  BOOST_CHECK_THROW(save_safetensors(path, {{"x", at::randn({1})}, {"x", at::randn({1})}}), Error);
}

// The file is fsync'ed before the rename that publishes it, the folder after (durable_file.h);
// a failing fsync throws naming the file and leaves neither the file nor its temporary.
BOOST_AUTO_TEST_CASE(save_is_durable_and_a_failed_fsync_publishes_nothing) {
  test::TempDir dir;
  const std::string path = dir / "adapter_model.safetensors";
  test::RecordingFileSync rec;
  save_safetensors(path, {{"w", at::randn({2, 3})}});
  BOOST_REQUIRE_EQUAL(rec.calls.size(), 3u);
  BOOST_TEST(rec.calls[0].rfind("sync_file " + dir.path() + "/.adapter_model.safetensors.tmp-", 0) == 0);
  BOOST_TEST(rec.calls[1].rfind("rename ", 0) == 0);
  BOOST_TEST(rec.calls[1].substr(rec.calls[1].size() - path.size() - 1) == " " + path);
  BOOST_TEST(rec.calls[2] == "sync_dir " + dir.path());

  rec.fail_next("sync_file ", EIO);
  const std::string fresh = dir / "other.safetensors";
  try {
    save_safetensors(fresh, {{"w", at::randn({2})}});
    BOOST_ERROR("expected an error");
  } catch (const Error& e) {
    BOOST_TEST_INFO(e.what());
    BOOST_TEST(std::string(e.what()).find("cannot fsync " + dir.path() + "/.other.safetensors.tmp-") !=
               std::string::npos);
  }
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  BOOST_TEST(files == 1u);  // only the first file
}

BOOST_AUTO_TEST_CASE(weight_store_single_and_sharded) {
  test::TempDir dir;
  const at::Tensor a = at::randn({4, 3}), b = at::randn({2}), c = at::randn({5, 5});
  std::filesystem::create_directories(dir / "single");
  save_safetensors(dir / "single/model.safetensors", {{"a", a}, {"b", b}, {"c", c}});
  BOOST_CHECK_THROW(save_safetensors(dir / "missing_dir/x/model.safetensors", {{"a", a}}), Error);
  std::filesystem::create_directories(dir / "sharded");
  save_safetensors(dir / "sharded/model-00001-of-00002.safetensors", {{"a", a}, {"b", b}});
  save_safetensors(dir / "sharded/model-00002-of-00002.safetensors", {{"c", c}});
  const json index = {{"metadata", {{"total_size", 39 * 4}}},
                      {"weight_map", {{"a", "model-00001-of-00002.safetensors"},
                                      {"b", "model-00001-of-00002.safetensors"},
                                      {"c", "model-00002-of-00002.safetensors"}}}};
  test::write_file(dir / "sharded/model.safetensors.index.json", index.dump());
  for (const char* sub : {"single", "sharded"}) {
    const WeightStore w = WeightStore::open(dir / sub);
    BOOST_TEST(w.names() == (std::vector<std::string>{"a", "b", "c"}), boost::test_tools::per_element());
    BOOST_TEST(at::equal(w.load("c", c10::kFloat, kCpu), c));
    BOOST_TEST(w.entry("a").shape == (std::vector<int64_t>{4, 3}), boost::test_tools::per_element());
    BOOST_CHECK_THROW(w.load("d", c10::kFloat, kCpu), Error);
  }
  // Index errors: a shard that does not exist, a tensor missing from its shard, a path outside.
  auto expect_index_error = [&](json bad, const std::string& why) {
    test::write_file(dir / "sharded/model.safetensors.index.json", bad.dump());
    try {
      WeightStore::open(dir / "sharded");
      BOOST_ERROR("no Error for " << why);
    } catch (const Error& e) {
      BOOST_CHECK_MESSAGE(std::string(e.what()).find(why) != std::string::npos, e.what());
      BOOST_CHECK_MESSAGE(std::string(e.what()).find("model.safetensors.index.json") != std::string::npos, e.what());
    }
  };
  json bad = index;
  bad["weight_map"]["c"] = "model-00003-of-00002.safetensors";
  expect_index_error(bad, "does not exist");
  bad = index;
  bad["weight_map"]["c"] = "model-00001-of-00002.safetensors";
  expect_index_error(bad, "does not contain");
  bad = index;
  bad["weight_map"]["c"] = "../single/model.safetensors";
  expect_index_error(bad, "not a file name");
  BOOST_CHECK_THROW(WeightStore::open(dir / "nothing"), Error);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace dtune
