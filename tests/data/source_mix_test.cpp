// Several inputs in one pretokenize run: `FILE[:WEIGHT]` parsing, the seeded sampling/repeating
// of rows, source ids in the HDF5 file (older files read as source 0), each input's own eval
// split, the per-input summary and the `sources` attribute.
#include "dtune/data/source_mix.h"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/data/hdf5_dataset.h"
#include "dtune/data/pretokenizer.h"
#include "test_files.h"

namespace {

const std::string kData = DTUNE_TEST_DATA;
const std::string kSample = std::string(DTUNE_SOURCE_DIR) + "/data/medical_sample.json";

dtune::PretokenizeOptions options(const dtune::test::ScratchDir& dir, std::vector<dtune::InputSource> inputs) {
  dtune::PretokenizeOptions o;
  o.tokenizer_path = kData + "/tokenizers/llama3_1";
  o.inputs = std::move(inputs);
  o.output_path = dir.file("out.h5");
  o.eval_fraction = 0.2;
  o.seed = 5;
  o.threads = 2;
  o.rows_per_batch = 7;
  o.show_progress = false;
  return o;
}

std::vector<std::vector<int32_t>> rows_of(const dtune::Hdf5Dataset& d) {
  std::vector<std::vector<int32_t>> rows;
  for (int64_t i = 0; i < d.num_rows(); ++i) rows.push_back(d.read_row(i));
  return rows;
}

}  // namespace

BOOST_AUTO_TEST_CASE(input_argument_and_weights) {
  BOOST_TEST(dtune::parse_input_source("a.jsonl").path == "a.jsonl");
  BOOST_TEST(dtune::parse_input_source("a.jsonl").weight == 1.0);
  BOOST_TEST(dtune::parse_input_source("a.jsonl:0.25").path == "a.jsonl");
  BOOST_TEST(dtune::parse_input_source("a.jsonl:0.25").weight == 0.25);
  BOOST_TEST(dtune::parse_input_source("s3:bucket").path == "s3:bucket");  // not a number: part of the path
  BOOST_CHECK_THROW(dtune::parse_input_source("a.jsonl:0"), dtune::Error);
  BOOST_CHECK_THROW(dtune::parse_input_source("a.jsonl:-2"), dtune::Error);
  BOOST_CHECK_THROW(dtune::parse_input_source("a.jsonl:inf"), dtune::Error);
  // Whole weights copy every row exactly; fractions are seeded Bernoulli draws: for 20,000 rows
  // the count is within 4 standard deviations (sqrt(n p (1-p)) ~ 65) of n * frac.
  int64_t half = 0, two_and_half = 0;
  for (int64_t r = 1; r <= 20000; ++r) {
    BOOST_REQUIRE(dtune::row_copies(1.0, r, 9, 0) == 1);
    BOOST_REQUIRE(dtune::row_copies(3.0, r, 9, 1) == 3);
    half += dtune::row_copies(0.5, r, 9, 0);
    two_and_half += dtune::row_copies(2.5, r, 9, 1);
    BOOST_REQUIRE(dtune::row_copies(0.5, r, 9, 0) == dtune::row_copies(0.5, r, 9, 0));  // deterministic
  }
  BOOST_TEST(std::abs(half - 10000) < 4 * 71);
  BOOST_TEST(std::abs(two_and_half - 50000) < 4 * 71);
  BOOST_TEST(dtune::source_split_seed(7, 0) == 7u);  // one input splits as before
  BOOST_TEST(dtune::source_split_seed(7, 1) != dtune::source_split_seed(7, 2));
}

BOOST_AUTO_TEST_CASE(two_inputs_record_their_source_and_split_each) {
  dtune::test::ScratchDir dir("mix_two");
  // Input 0 alone, for reference: a one-input run is unchanged.
  dtune::PretokenizeOptions one = options(dir, {{kSample, 1}});
  one.output_path = dir.file("one.h5");
  dtune::pretokenize(one);
  const auto one_train = rows_of(dtune::Hdf5Dataset::open(one.output_path, "train"));
  const auto one_eval = rows_of(dtune::Hdf5Dataset::open(one.output_path, "eval"));

  const dtune::PretokenizeOptions o = options(dir, {{kSample, 1}, {kSample, 2}});
  const dtune::PretokenizeStats s = dtune::pretokenize(o);
  const dtune::Hdf5Dataset train = dtune::Hdf5Dataset::open(o.output_path, "train");
  const dtune::Hdf5Dataset eval = dtune::Hdf5Dataset::open(o.output_path, "eval");
  // Expected split of each input from the per-source seeds; input 1's train rows twice.
  int64_t want_train[2] = {0, 0}, want_eval[2] = {0, 0};
  for (int src = 0; src < 2; ++src) {
    for (int64_t r = 1; r <= 40; ++r) {
      const bool is_eval = dtune::is_eval_row(r, dtune::source_split_seed(5, src), 0.2);
      (is_eval ? want_eval[src] : want_train[src]) += is_eval ? 1 : (src == 0 ? 1 : 2);
    }
  }
  BOOST_REQUIRE(s.sources.size() == 2u);
  for (int src = 0; src < 2; ++src) {
    BOOST_TEST(s.sources[src].rows == 40);
    BOOST_TEST(s.sources[src].train_rows == want_train[src]);
    BOOST_TEST(s.sources[src].eval_rows == want_eval[src]);
  }
  BOOST_TEST(train.num_rows() == want_train[0] + want_train[1]);
  BOOST_TEST(eval.num_rows() == want_eval[0] + want_eval[1]);
  // Input 0's rows come first, identical to the one-input run; then input 1's.
  for (int64_t i = 0; i < train.num_rows(); ++i) {
    BOOST_TEST_CONTEXT("train row " << i) {
      BOOST_TEST(train.source_id(i) == (i < want_train[0] ? 0 : 1));
      if (i < want_train[0]) BOOST_TEST(train.read_row(i) == one_train[static_cast<size_t>(i)]);
    }
  }
  for (int64_t i = 0; i < want_eval[0]; ++i) BOOST_TEST(eval.read_row(i) == one_eval[static_cast<size_t>(i)]);
  // Repeated rows of input 1 sit next to each other.
  for (int64_t i = want_train[0]; i + 1 < train.num_rows(); i += 2) BOOST_TEST(train.read_row(i) == train.read_row(i + 1));
  // Provenance: both paths, one digest of both, and the per-input table.
  const dtune::PretokenizedInfo& info = train.info();
  BOOST_TEST(info.source_path == kSample + "; " + kSample);
  const nlohmann::json sources = nlohmann::json::parse(info.sources);
  BOOST_REQUIRE(sources.size() == 2u);
  BOOST_TEST(sources[1]["weight"].get<double>() == 2.0);
  BOOST_TEST(sources[1]["train_rows"].get<int64_t>() == want_train[1]);
  BOOST_TEST(sources[0]["sha256"].get<std::string>() == dtune::sha256_file(kSample));
  // One input: no `sources` attribute, the single path as before.
  BOOST_TEST(dtune::Hdf5Dataset::read_info(one.output_path).sources.empty());
  BOOST_TEST(dtune::Hdf5Dataset::read_info(one.output_path).source_path == kSample);
}

BOOST_AUTO_TEST_CASE(weight_below_one_samples_rows) {
  dtune::test::ScratchDir dir("mix_sample");
  dtune::PretokenizeOptions o = options(dir, {{kSample, 0.5}});
  o.eval_fraction = 0;
  const dtune::PretokenizeStats s = dtune::pretokenize(o);
  int64_t want = 0;
  for (int64_t r = 1; r <= 40; ++r) want += dtune::row_copies(0.5, r, 5, 0);
  BOOST_TEST(s.train_rows == want);
  BOOST_TEST(want > 10);
  BOOST_TEST(want < 30);
}

BOOST_AUTO_TEST_CASE(older_files_read_as_one_source_and_mixed_formats_are_refused) {
  const dtune::Hdf5Dataset legacy = dtune::Hdf5Dataset::open(kData + "/data/legacy_v1_nofilter.h5", "train");
  BOOST_TEST(legacy.info().format_version == 1);
  BOOST_TEST(legacy.source_id(0) == 0);
  std::vector<int8_t> mask;
  legacy.read_loss_mask(0, mask);  // version 1: 0 on the prompt, 1 after
  BOOST_TEST(mask.size() == static_cast<size_t>(legacy.row_length(0)));
  BOOST_TEST(std::count(mask.begin(), mask.end(), 0) == legacy.prompt_length(0));

  dtune::test::ScratchDir dir("mix_formats");
  dtune::PretokenizeOptions o =
      options(dir, {{kSample, 1}, {std::string(DTUNE_SOURCE_DIR) + "/data/medical_chat_sample.jsonl", 1}});
  try {
    dtune::pretokenize(o);
    BOOST_FAIL("expected an error");
  } catch (const dtune::Error& e) {
    BOOST_TEST(std::string(e.what()).find("medical_chat_sample.jsonl: its rows are messages rows but " + kSample +
                                          "'s are template") != std::string::npos, e.what());
  }
}
