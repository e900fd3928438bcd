// `dtune pretokenize` on conversational rows end to end: TRL messages, prompt-completion and
// ShareGPT files give the ids and assistant-turn loss masks of transformers'
// apply_chat_template (fixture tests/fixtures/data/chat_deepseek_v3.json, from
// scripts/gen_chat_fixtures.py; tolerance 0), the format is detected from the first row, and
// bad conversations are errors naming file, row and field (or skipped rows, counted).
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/data/batcher.h"
#include "dtune/data/hdf5_dataset.h"
#include "dtune/data/pretokenizer.h"
#include "test_files.h"

using dtune::Hdf5Dataset;
using dtune::PretokenizeOptions;
using dtune::RowFormat;

namespace {

const std::string kData = DTUNE_TEST_DATA;

nlohmann::json fixture(const std::string& name = "deepseek_v3") {
  return nlohmann::json::parse(dtune::test::read_text(dtune::str(kData, "/data/chat_", name, ".json")));
}

PretokenizeOptions chat_options(const dtune::test::ScratchDir& dir, const std::string& input) {
  PretokenizeOptions o;
  o.tokenizer_path = kData + "/tokenizers/deepseek_v3";  // its tokenizer_config.json: DeepSeek-V3's template
  o.input_path = input;
  o.output_path = dir.file("out.h5");
  o.eval_fraction = 0;
  o.threads = 2;
  o.rows_per_batch = 2;
  o.show_progress = false;
  return o;
}

// The fixture's rows as JSONL in format: messages / prompt-completion (split at first_trained)
// / sharegpt.
std::string rows_as(RowFormat format) {
  std::string out;
  const nlohmann::json fx = fixture();
  for (const auto& r : fx.at("rows")) {
    const nlohmann::json& m = r.at("messages");
    const size_t split = r.at("first_trained").get<size_t>();
    nlohmann::json row;
    if (format == RowFormat::kPromptCompletion) {
      if (split == 0) continue;
      row["prompt"] = nlohmann::json(std::vector<nlohmann::json>(m.begin(), m.begin() + split));
      row["completion"] = nlohmann::json(std::vector<nlohmann::json>(m.begin() + split, m.end()));
    } else if (format == RowFormat::kShareGpt) {
      if (split != 0) continue;
      nlohmann::json conv = nlohmann::json::array();
      for (const auto& t : m) {
        const std::string role = t.at("role");
        conv.push_back({{"from", role == "user" ? "human" : role == "assistant" ? "gpt" : role},
                        {"value", t.at("content")}});
      }
      row["conversations"] = conv;
      row["id"] = "x";  // extra fields are ignored
    } else {
      if (split != 0) continue;
      row["messages"] = m;
    }
    out += row.dump() + "\n";
  }
  return out;
}

// Oracle rows of the fixture with (first_trained != 0) == prompt_completion.
std::vector<nlohmann::json> oracle_rows(bool prompt_completion, const std::string& name = "deepseek_v3") {
  std::vector<nlohmann::json> rows;
  const nlohmann::json fx = fixture(name);
  for (const auto& r : fx.at("rows")) {
    if ((r.at("first_trained").get<size_t>() != 0) == prompt_completion) rows.push_back(r);
  }
  return rows;
}

void check_against_oracle(const std::string& h5, const std::vector<nlohmann::json>& oracle, bool train_all = false) {
  const Hdf5Dataset d = Hdf5Dataset::open(h5, "train");
  BOOST_REQUIRE(d.num_rows() == static_cast<int64_t>(oracle.size()));
  BOOST_TEST(d.info().format_version == dtune::kDataFormatVersion);
  std::vector<int8_t> mask;
  for (int64_t i = 0; i < d.num_rows(); ++i) {
    BOOST_TEST_CONTEXT("row " << i) {
      BOOST_TEST(d.read_row(i) == oracle[i].at("ids").get<std::vector<int32_t>>(), boost::test_tools::per_element());
      d.read_loss_mask(i, mask);
      std::vector<int> want = oracle[i].at("loss_mask").get<std::vector<int>>();
      if (train_all) std::fill(want.begin(), want.end(), 1);
      BOOST_TEST(std::vector<int>(mask.begin(), mask.end()) == want, boost::test_tools::per_element());
      const auto first = std::find(want.begin(), want.end(), 1) - want.begin();
      BOOST_TEST(d.prompt_length(i) == first);
    }
  }
}

std::string error_of(const PretokenizeOptions& o) {
  try {
    dtune::pretokenize(o);
  } catch (const dtune::Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(messages_rows_equal_apply_chat_template_and_assistant_spans) {
  dtune::test::ScratchDir dir("chat_messages");
  dtune::test::write_text(dir.file("rows.jsonl"), rows_as(RowFormat::kMessages));
  const PretokenizeOptions o = chat_options(dir, dir.file("rows.jsonl"));  // format auto
  const dtune::PretokenizeStats s = dtune::pretokenize(o);
  BOOST_TEST(s.train_rows == 5);
  check_against_oracle(o.output_path, oracle_rows(false));
  const dtune::PretokenizedInfo info = Hdf5Dataset::read_info(o.output_path);
  BOOST_TEST(info.template_name == "chat template: DeepSeek-V3");
  BOOST_TEST(contains(info.template_text, "messages rows rendered with the chat_template of"));
}

BOOST_AUTO_TEST_CASE(chat_template_option_and_dropped_reasoning_count) {
  // DeepSeek-R1-Distill's template (given with --chat-template) keeps only what follows
  // </think> in each assistant turn; the 3 turns of the rows that carry reasoning are counted.
  dtune::test::ScratchDir dir("chat_r1");
  dtune::test::write_text(dir.file("rows.jsonl"), rows_as(RowFormat::kMessages));
  PretokenizeOptions o = chat_options(dir, dir.file("rows.jsonl"));
  o.chat_template_path = kData + "/chat_templates/r1_distill_qwen";
  const dtune::PretokenizeStats s = dtune::pretokenize(o);
  BOOST_TEST(s.dropped_reasoning_turns == 3);
  check_against_oracle(o.output_path, oracle_rows(false, "r1_distill_qwen"));
  BOOST_TEST(Hdf5Dataset::read_info(o.output_path).template_name ==
             "chat template: DeepSeek-R1-Distill (first release)");
}

BOOST_AUTO_TEST_CASE(sharegpt_rows_give_the_same_ids) {
  dtune::test::ScratchDir dir("chat_sharegpt");
  dtune::test::write_text(dir.file("rows.jsonl"), rows_as(RowFormat::kShareGpt));
  const PretokenizeOptions o = chat_options(dir, dir.file("rows.jsonl"));
  dtune::pretokenize(o);
  check_against_oracle(o.output_path, oracle_rows(false));
}

BOOST_AUTO_TEST_CASE(prompt_completion_rows_train_on_the_completion) {
  dtune::test::ScratchDir dir("chat_prompt_completion");
  dtune::test::write_text(dir.file("rows.jsonl"), rows_as(RowFormat::kPromptCompletion));
  PretokenizeOptions o = chat_options(dir, dir.file("rows.jsonl"));
  dtune::pretokenize(o);
  check_against_oracle(o.output_path, oracle_rows(true));
  o.completion_only_loss = false;  // every token
  dtune::pretokenize(o);
  check_against_oracle(o.output_path, oracle_rows(true), /*train_all=*/true);
}

BOOST_AUTO_TEST_CASE(assistant_only_loss_false_trains_on_every_token_and_batcher_follows_the_mask) {
  dtune::test::ScratchDir dir("chat_all");
  dtune::test::write_text(dir.file("rows.jsonl"), rows_as(RowFormat::kMessages));
  PretokenizeOptions o = chat_options(dir, dir.file("rows.jsonl"));
  dtune::pretokenize(o);
  {  // labels: the id where the mask is 1 (never the first id), else ignored
    const Hdf5Dataset d = Hdf5Dataset::open(o.output_path, "train");
    const dtune::ShardSampler sampler(d.num_rows(), 0, 1, {.seed = 1, .shuffle = false});
    dtune::Batcher batcher(d, sampler, {.batch_size = 1});
    dtune::Batch b;
    const auto oracle = oracle_rows(false);
    for (size_t i = 0; batcher.next(b); ++i) {
      const auto ids = oracle[i].at("ids").get<std::vector<int32_t>>();
      const auto mask = oracle[i].at("loss_mask").get<std::vector<int>>();
      int64_t n = 0;
      for (size_t k = 0; k < ids.size(); ++k) {
        const bool loss = k > 0 && mask[k] == 1;
        n += loss;
        BOOST_TEST(b.labels[k] == (loss ? ids[k] : dtune::kIgnoreIndex));
      }
      BOOST_TEST(b.num_loss_tokens == n);
    }
  }
  o.assistant_only_loss = false;
  dtune::pretokenize(o);
  check_against_oracle(o.output_path, oracle_rows(false), /*train_all=*/true);
}

BOOST_AUTO_TEST_CASE(format_detection_and_its_errors) {
  dtune::test::ScratchDir dir("chat_detect");
  dtune::test::write_text(dir.file("odd.jsonl"), R"({"instruction": "a", "output": "b"})" "\n");
  const std::string msg = error_of(chat_options(dir, dir.file("odd.jsonl")));
  BOOST_TEST(contains(msg, dir.file("odd.jsonl") + ": cannot tell the row format from the first row's fields (instruction, output)"));
  BOOST_TEST(contains(msg, "\"messages\""));
  BOOST_TEST(contains(msg, "Question, Complex_CoT, Response"));
  // A forced format whose field is missing names the row and the field.
  PretokenizeOptions o = chat_options(dir, dir.file("odd.jsonl"));
  o.format = RowFormat::kShareGpt;
  BOOST_TEST(contains(error_of(o), "row 1 (line 1): field \"conversations\" is missing (the row has: instruction, output)"));
  // A tokenizer folder whose template dtune does not know: refused, naming the file.
  dtune::test::write_text(dir.file("m.jsonl"), rows_as(RowFormat::kMessages));
  o = chat_options(dir, dir.file("m.jsonl"));
  dtune::test::write_text(dir.file("tokenizer_config.json"), R"({"chat_template": "{{ messages }}"})");
  o.chat_template_path = dir.file("tokenizer_config.json");
  const std::string unknown = error_of(o);
  BOOST_TEST(contains(unknown, dtune::str(dir.file("tokenizer_config.json"), ": the chat_template")), unknown);
  // --template with conversational rows is a contradiction, said so.
  o = chat_options(dir, dir.file("m.jsonl"));
  o.template_given = true;
  o.format = RowFormat::kMessages;
  BOOST_TEST(contains(error_of(o), "--template/--template-file apply to --format template"));
}

BOOST_AUTO_TEST_CASE(bad_conversations_name_file_row_and_field) {
  dtune::test::ScratchDir dir("chat_bad");
  const std::string good = R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"messages": [{"content": "q"}, {"role": "assistant", "content": "a"}]})",
       "field \"messages\"[0] has no \"role\" (it has: content)"},
      {R"({"messages": [{"role": "tool", "content": "q"}, {"role": "assistant", "content": "a"}]})",
       "field \"messages\"[0]: unknown role \"tool\""},
      {R"({"messages": [{"role": "user", "content": null}, {"role": "assistant", "content": "a"}]})",
       "field \"messages\"[0]: \"content\" is null, expected a string (tool calls are not supported)"},
      {R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "q2"}]})",
       "field \"messages\": the last turn is a user turn, not an assistant turn"},
      {R"({"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]})",
       "field \"messages\": turn 1 is a system turn; only the first turn may be one"},
      {R"({"messages": "hello"})", "field \"messages\" is a string, expected a list of messages"},
      {R"({"messages": []})", "field \"messages\" is an empty list"},
  };
  int n = 0;
  for (const auto& [bad, want] : cases) {
    BOOST_TEST_CONTEXT(bad) {
      const std::string file = dir.file("bad" + std::to_string(n++) + ".jsonl");
      dtune::test::write_text(file, good + "\n" + bad + "\n" + good + "\n");
      PretokenizeOptions o = chat_options(dir, file);
      const std::string msg = error_of(o);
      BOOST_TEST(contains(msg, file + ": row 2 (line 2): " + want), msg);
      o.skip_bad_rows = true;
      const dtune::PretokenizeStats s = dtune::pretokenize(o);
      BOOST_TEST(s.skipped_rows == 1);
      BOOST_TEST(s.train_rows == 2);
    }
  }
  const std::string pc = dir.file("pc.jsonl");
  dtune::test::write_text(pc, R"({"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "user", "content": "a"}]})" "\n");
  BOOST_TEST(contains(error_of(chat_options(dir, pc)),
                      pc + ": row 1 (line 1): field \"completion\"[0] has role \"user\"; the completion holds the assistant's turns only"));
  dtune::test::write_text(pc, R"({"conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "a"}]})" "\n");
  BOOST_TEST(contains(error_of(chat_options(dir, pc)),
                      "field \"conversations\"[1]: unknown \"from\": \"bot\"; ShareGPT turns are from system, human or gpt"));
}
