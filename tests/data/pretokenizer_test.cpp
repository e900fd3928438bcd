// pretokenize end to end with the llama3_1 / deepseek_v3 tokenizers: ids equal the PyPI
// `tokenizers` oracle (tests/fixtures/data/medical_sample_*.json, scripts/gen_data_fixtures.py;
// tolerance 0: tokenization is exact), decode gives the formatted text back, split and
// truncation follow their rules, and a failed run leaves no output file.
#include "dtune/data/pretokenizer.h"

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/data/hdf5_dataset.h"
#include "dtune/tokenizer/tokenizer.h"
#include "test_files.h"

using dtune::Hdf5Dataset;
using dtune::PretokenizeOptions;

namespace {

const std::string kData = DTUNE_TEST_DATA;
const std::string kSample = std::string(DTUNE_SOURCE_DIR) + "/data/medical_sample.json";

struct OracleRow {
  std::vector<int32_t> prompt, completion, full;  // full = prompt + completion + eos
  std::string text, decoded;
};

std::vector<OracleRow> load_oracle(const std::string& name) {
  const nlohmann::json j =
      nlohmann::json::parse(dtune::test::read_text(kData + "/data/medical_sample_" + name + ".json"));
  std::vector<OracleRow> rows;
  for (const auto& r : j.at("rows")) {
    OracleRow o;
    o.prompt = r.at("prompt_ids").get<std::vector<int32_t>>();
    o.completion = r.at("completion_ids").get<std::vector<int32_t>>();
    o.full = o.prompt;
    o.full.insert(o.full.end(), o.completion.begin(), o.completion.end());
    o.full.push_back(j.at("eos_id").get<int32_t>());
    o.text = r.at("text").get<std::string>();
    o.decoded = r.at("decoded").get<std::string>();
    rows.push_back(std::move(o));
  }
  return rows;
}

PretokenizeOptions base_options(const dtune::test::ScratchDir& dir) {
  PretokenizeOptions o;
  o.tokenizer_path = kData + "/tokenizers/llama3_1";
  o.input_path = kSample;
  o.output_path = dir.file("out.h5");
  o.eval_fraction = 0;
  o.threads = 2;
  o.rows_per_batch = 3;          // many small work items: exercises in-order writing
  o.max_batches_in_flight = 2;   // and the bounded queue
  o.show_progress = false;
  return o;
}

std::vector<std::string> sample_fields(size_t row) {
  const nlohmann::json j = nlohmann::json::parse(dtune::test::read_text(kSample));
  return {j[row]["Question"], j[row]["Complex_CoT"], j[row]["Response"]};
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_equals_the_tokenizers_oracle) {
  dtune::test::ScratchDir dir("pretok_roundtrip");
  const PretokenizeOptions o = base_options(dir);
  const dtune::PretokenizeStats stats = dtune::pretokenize(o);
  BOOST_TEST(stats.train_rows == 40);
  BOOST_TEST(stats.truncated_rows == 0);
  const std::vector<OracleRow> oracle = load_oracle("llama3_1_recipe");
  const Hdf5Dataset d = Hdf5Dataset::open(o.output_path, "train");
  const dtune::Tokenizer tok = dtune::Tokenizer::load(o.tokenizer_path);
  BOOST_REQUIRE(d.num_rows() == 40);
  for (int64_t i = 0; i < 40; ++i) {
    BOOST_TEST_INFO("row " << i);
    const std::vector<int32_t> ids = d.read_row(i);
    BOOST_TEST(ids == oracle[i].full);
    BOOST_TEST(d.prompt_length(i) == static_cast<int32_t>(oracle[i].prompt.size()));
    const std::string text = tok.decode(ids, /*skip_special_tokens=*/true);
    BOOST_TEST(text == oracle[i].text);
    BOOST_TEST(text == oracle[i].decoded);
  }
  const dtune::PretokenizedInfo& info = d.info();
  BOOST_TEST(info.source_sha256 == dtune::sha256_file(kSample));
  BOOST_TEST(info.tokenizer_sha256 == tok.sha256());
  BOOST_TEST(info.vocab_size == tok.vocab_size());
  BOOST_TEST(info.bos_id == 128000);  // <|begin_of_text|>
  BOOST_TEST(info.eos_id == 128009);  // <|eot_id|>
  BOOST_TEST(info.template_name == "recipe");
  BOOST_TEST(info.template_text == dtune::PromptTemplate::preset("recipe").text());
  BOOST_TEST(info.num_eval_rows == 0);
  BOOST_TEST(info.dtune_version == DTUNE_VERSION);
  BOOST_CHECK_NO_THROW(d.validate_all_ids());
}

BOOST_AUTO_TEST_CASE(split_follows_row_number_and_seed) {
  dtune::test::ScratchDir dir("pretok_split");
  PretokenizeOptions o = base_options(dir);
  o.eval_fraction = 0.3;
  o.seed = 7;
  dtune::pretokenize(o);
  const std::vector<OracleRow> oracle = load_oracle("llama3_1_recipe");
  const Hdf5Dataset train = Hdf5Dataset::open(o.output_path, "train");
  const Hdf5Dataset eval = Hdf5Dataset::open(o.output_path, "eval");
  int64_t t = 0, e = 0;
  for (int64_t i = 0; i < 40; ++i) {
    const bool is_eval = dtune::is_eval_row(i + 1, 7, 0.3);
    const Hdf5Dataset& d = is_eval ? eval : train;
    BOOST_REQUIRE((is_eval ? e : t) < d.num_rows());
    BOOST_TEST(d.read_row(is_eval ? e++ : t++) == oracle[i].full);
  }
  BOOST_TEST(t == train.num_rows());
  BOOST_TEST(e == eval.num_rows());
  BOOST_TEST(e > 3);   // 0.3 of 40 = 12 expected; 4..20 holds with this fixed seed
  BOOST_TEST(e < 21);
  int differs = 0;
  for (int64_t i = 1; i <= 40; ++i) differs += dtune::is_eval_row(i, 7, 0.3) != dtune::is_eval_row(i, 8, 0.3);
  BOOST_TEST(differs > 0);
}

BOOST_AUTO_TEST_CASE(truncation_cuts_counts_and_drops_prompt_only_rows) {
  dtune::test::ScratchDir dir("pretok_trunc");
  PretokenizeOptions o = base_options(dir);
  o.max_length = 64;
  const dtune::PretokenizeStats stats = dtune::pretokenize(o);
  const std::vector<OracleRow> oracle = load_oracle("llama3_1_recipe");
  const Hdf5Dataset d = Hdf5Dataset::open(o.output_path, "train");
  int64_t row = 0, truncated = 0, dropped = 0;
  for (const OracleRow& r : oracle) {
    truncated += r.full.size() > 64 ? 1 : 0;
    if (r.prompt.size() >= 64) {  // no completion token would survive
      ++dropped;
      continue;
    }
    std::vector<int32_t> want(r.full.begin(), r.full.begin() + std::min<size_t>(64, r.full.size()));
    BOOST_TEST(d.read_row(row) == want);
    BOOST_TEST(d.prompt_length(row) == static_cast<int32_t>(r.prompt.size()));
    ++row;
  }
  BOOST_TEST(row == d.num_rows());
  BOOST_TEST(truncated > 0);
  BOOST_TEST(stats.truncated_rows == truncated);
  BOOST_TEST(stats.dropped_rows == dropped);
  BOOST_TEST(d.info().num_truncated_rows == truncated);
  BOOST_TEST(d.info().num_dropped_rows == dropped);
  BOOST_TEST(d.info().max_length == 64);
}

BOOST_AUTO_TEST_CASE(r1_chat_template_matches_oracle_with_bos_in_the_text) {
  for (const std::string name : {"deepseek_v3", "llama3_1"}) {
    BOOST_TEST_INFO(name);
    const dtune::Tokenizer tok = dtune::Tokenizer::load(kData + "/tokenizers/" + name);
    const dtune::PromptTemplate t = dtune::PromptTemplate::preset("r1-chat");
    const dtune::RowTokenizer rt(tok, t, dtune::AddBos::kAuto, 4096);
    const std::vector<OracleRow> oracle = load_oracle(name + "_r1-chat");
    for (size_t i = 0; i < oracle.size(); ++i) {
      dtune::TokenizedRow out;
      rt.tokenize(sample_fields(i), out);
      BOOST_TEST(out.ids == oracle[i].full);
      BOOST_TEST(out.prompt_length == static_cast<int32_t>(oracle[i].prompt.size()));
    }
  }
}

BOOST_AUTO_TEST_CASE(add_bos_no_and_yes) {
  const dtune::Tokenizer tok = dtune::Tokenizer::load(kData + "/tokenizers/llama3_1");
  const dtune::PromptTemplate t = dtune::PromptTemplate::preset("recipe");
  const std::vector<OracleRow> oracle = load_oracle("llama3_1_recipe");
  dtune::TokenizedRow no, yes;
  dtune::RowTokenizer(tok, t, dtune::AddBos::kNo, 4096).tokenize(sample_fields(0), no);
  dtune::RowTokenizer(tok, t, dtune::AddBos::kYes, 4096).tokenize(sample_fields(0), yes);
  BOOST_TEST(yes.ids == oracle[0].full);  // llama3's post-processor already adds BOS
  std::vector<int32_t> without_bos(oracle[0].full.begin() + 1, oracle[0].full.end());
  BOOST_TEST(no.ids == without_bos);
  BOOST_TEST(no.prompt_length + 1 == yes.prompt_length);
}

BOOST_AUTO_TEST_CASE(bad_row_fails_without_output_and_skip_counts_it) {
  dtune::test::ScratchDir dir("pretok_bad");
  const std::string input = dir.file("bad.jsonl");
  const std::string good = R"({"Question": "q", "Complex_CoT": "c", "Response": "r"})";
  std::string bytes;
  for (int i = 0; i < 300; ++i) bytes += (i == 250 ? R"({"Question": "q", "Response": "r"})" : good) + "\n";
  dtune::test::write_text(input, bytes);
  PretokenizeOptions o = base_options(dir);
  o.input_path = input;
  try {
    dtune::pretokenize(o);
    BOOST_FAIL("expected an error");
  } catch (const dtune::Error& e) {
    BOOST_TEST_INFO(e.what());
    BOOST_TEST(std::string(e.what()).find("row 251 (line 251): field \"Complex_CoT\" is missing") !=
               std::string::npos);
  }
  // Nothing left behind: neither the output nor its temp file.
  std::vector<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    left.push_back(entry.path().filename().string());
  }
  BOOST_TEST(left == std::vector<std::string>{"bad.jsonl"}, boost::test_tools::per_element());

  o.skip_bad_rows = true;
  const dtune::PretokenizeStats s = dtune::pretokenize(o);
  BOOST_TEST(s.skipped_rows == 1);
  BOOST_TEST(s.rows_written == 299);
  BOOST_TEST(Hdf5Dataset::read_info(o.output_path).num_skipped_rows == 1);
}

BOOST_AUTO_TEST_CASE(template_field_missing_from_rows_is_reported) {
  dtune::test::ScratchDir dir("pretok_field");
  dtune::test::write_text(dir.file("t.txt"), "Q: {Question}\nA: {@completion}{Answer}\n");
  PretokenizeOptions o = base_options(dir);
  o.template_file = dir.file("t.txt");
  try {
    dtune::pretokenize(o);
    BOOST_FAIL("expected an error");
  } catch (const dtune::Error& e) {
    BOOST_TEST_INFO(e.what());
    const std::string msg = e.what();
    BOOST_TEST(msg.find("row 1 (line 2): field \"Answer\" is missing") != std::string::npos);
    BOOST_TEST(msg.find("Complex_CoT, Question, Response") != std::string::npos);
  }
  BOOST_TEST(!std::filesystem::exists(o.output_path));
}

// --encode joint (the recipe's and TRL's tokenization): the whole formatted text encoded once.
// With --completion-only-loss false the ids equal transformers' tokenizer(text)["input_ids"] of
// the recipe's text (template + EOS text) and every token takes the loss; with true the prompt
// is every leading token whose characters lie inside the rendered prompt, so a token that spans
// the boundary (Llama 3.1's ":\n\n" when the completion starts with "\n") is trained. Completions
// start with "\n", "\n\n", a space, a tab, a digit and a letter; Llama 3.1 and DeepSeek-V3
// (fixture tests/fixtures/data/joint_recipe.json from scripts/gen_joint_fixtures.py; exact).
BOOST_AUTO_TEST_CASE(joint_encoding_equals_tokenizing_the_whole_text) {
  const nlohmann::json fx = nlohmann::json::parse(dtune::test::read_text(kData + "/data/joint_recipe.json"));
  int boundary_tokens = 0;  // rows whose split and joint ids differ
  for (const auto& c : fx.at("cases")) {
    const std::string name = c.at("tokenizer");
    dtune::test::ScratchDir dir("pretok_joint_" + name);
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : c.at("rows"))
      rows.push_back({{"Question", r.at("Question")}, {"Complex_CoT", r.at("Complex_CoT")}, {"Response", r.at("Response")}});
    const std::string input = dir.file("rows.json");
    std::ofstream(input) << rows.dump();
    for (const bool completion_only : {false, true}) {
      for (const std::string encode : {"joint", "split"}) {
        if (encode == "split" && completion_only) continue;  // split is compared once, as a control
        PretokenizeOptions o = base_options(dir);
        o.tokenizer_path = kData + "/tokenizers/" + name;
        o.input_path = input;
        o.output_path = dir.file(encode + (completion_only ? "_c.h5" : "_all.h5"));
        o.encode = encode;
        o.completion_only_loss = completion_only;
        o.max_length = 4096;
        dtune::pretokenize(o);
        const Hdf5Dataset d = Hdf5Dataset::open(o.output_path, "train");
        BOOST_REQUIRE_EQUAL(d.num_rows(), static_cast<int64_t>(rows.size()));
        for (int64_t i = 0; i < d.num_rows(); ++i) {
          const auto& want = c.at("rows")[static_cast<size_t>(i)];
          BOOST_TEST_CONTEXT(name << " row " << i << " " << encode << " completion_only_loss " << completion_only) {
            const auto want_ids = want.at("ids").get<std::vector<int32_t>>();
            if (encode == "split") {
              boundary_tokens += !completion_only && d.read_row(i) != want_ids;
              continue;
            }
            BOOST_TEST(d.read_row(i) == want_ids, boost::test_tools::per_element());
            BOOST_TEST(d.prompt_length(i) == (completion_only ? want.at("prompt_tokens").get<int32_t>() : 0));
          }
        }
      }
    }
  }
  BOOST_TEST(boundary_tokens >= 2);  // "\n" and "\n\n" at least: joint is not split by another name
}
