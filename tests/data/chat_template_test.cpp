// Native chat templates against transformers: for every recognised template, the rendered
// text, the ids and the assistant-turn loss mask equal apply_chat_template's (fixtures
// tests/fixtures/data/chat_<case>.json from scripts/gen_chat_fixtures.py; tolerance 0: text and
// tokenization are deterministic). Single and multi-turn rows, with and without a system
// message, reasoning in assistant turns, whitespace Llama trims, non-ASCII text.
#include "dtune/data/chat_template.h"

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/data/chat_tokenizer.h"
#include "dtune/tokenizer/tokenizer.h"
#include "test_files.h"

using dtune::ChatMessage;
using dtune::ChatTemplate;

namespace {

const std::string kRoot = DTUNE_SOURCE_DIR;
const std::string kData = DTUNE_TEST_DATA;

std::vector<ChatMessage> messages_of(const nlohmann::json& j) {
  std::vector<ChatMessage> out;
  for (const auto& m : j) out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return out;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Every row of fixture chat_<name>.json: text, ids and loss mask equal the oracle's.
void check_against_oracle(const std::string& name) {
  const nlohmann::json fx = nlohmann::json::parse(dtune::test::read_text(dtune::str(kData, "/data/chat_", name, ".json")));
  const std::string tokenizer_path = dtune::str(kRoot, "/", fx.at("tokenizer").get<std::string>());
  BOOST_REQUIRE_MESSAGE(std::filesystem::exists(tokenizer_path),
                        tokenizer_path << " is missing; run scripts/setup.sh (it builds models/)");
  const dtune::Tokenizer tok = dtune::Tokenizer::load(tokenizer_path);
  const ChatTemplate chat = ChatTemplate::load(dtune::str(kRoot, "/", fx.at("chat_template").get<std::string>()));
  int row = 0;
  for (const auto& r : fx.at("rows")) {
    BOOST_TEST_CONTEXT(name << " row " << row++) {
      const dtune::RenderedChat rendered =
          chat.render(messages_of(r.at("messages")), r.at("first_trained").get<size_t>());
      BOOST_TEST(rendered.text == r.at("text").get<std::string>());
      std::vector<int32_t> ids;
      std::vector<int8_t> mask;
      dtune::tokenize_chat(tok, rendered, ids, mask);
      const auto want_ids = r.at("ids").get<std::vector<int32_t>>();
      BOOST_TEST(ids == want_ids, boost::test_tools::per_element());
      const auto want_mask = r.at("loss_mask").get<std::vector<int>>();
      BOOST_TEST(std::vector<int>(mask.begin(), mask.end()) == want_mask, boost::test_tools::per_element());
    }
  }
  // apply_chat_template(add_generation_prompt=True): the messages rendered, then the assistant
  // header (what `dtune generate --chat` tokenizes), with and without a system message.
  BOOST_REQUIRE_EQUAL(fx.at("generation_prompts").size(), 2u);
  for (const auto& g : fx.at("generation_prompts")) {
    const auto messages = messages_of(g.at("messages"));
    BOOST_TEST_CONTEXT(name << " generation prompt, " << messages.size() << " messages") {
      const std::string text = chat.render(messages, messages.size()).text + chat.generation_prompt();
      BOOST_TEST(text == g.at("text").get<std::string>());
      BOOST_TEST(tok.encode(text, /*add_special_tokens=*/false) == g.at("ids").get<std::vector<int32_t>>(),
                 boost::test_tools::per_element());
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(deepseek_v3_equals_apply_chat_template) { check_against_oracle("deepseek_v3"); }
BOOST_AUTO_TEST_CASE(r1_distill_qwen_equals_apply_chat_template) { check_against_oracle("r1_distill_qwen"); }
BOOST_AUTO_TEST_CASE(r1_distill_llama_equals_apply_chat_template) { check_against_oracle("r1_distill_llama"); }
BOOST_AUTO_TEST_CASE(llama3_equals_apply_chat_template) { check_against_oracle("llama3"); }
BOOST_AUTO_TEST_CASE(llama3_1_instruct_equals_apply_chat_template) { check_against_oracle("llama3_1_instruct"); }
BOOST_AUTO_TEST_CASE(smollm2_equals_apply_chat_template) { check_against_oracle("smollm2"); }
BOOST_AUTO_TEST_CASE(qwen3_equals_apply_chat_template) { check_against_oracle("qwen3"); }
BOOST_AUTO_TEST_CASE(qwen2_instruct_equals_apply_chat_template) { check_against_oracle("qwen2_instruct"); }
BOOST_AUTO_TEST_CASE(qwen2_5_instruct_equals_apply_chat_template) { check_against_oracle("qwen2_5_instruct"); }

BOOST_AUTO_TEST_CASE(unknown_template_is_refused_naming_file_and_families) {
  // A template dtune has not proven.
  dtune::test::ScratchDir dir("chat_template_unknown");
  const std::string path = dir.file("tokenizer_config.json");
  dtune::test::write_text(path, R"({"chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"})");
  try {
    ChatTemplate::load(path);
    BOOST_FAIL("expected an error");
  } catch (const dtune::Error& e) {
    const std::string msg = e.what();
    BOOST_TEST(starts_with(msg, dtune::str(path, ": the chat_template")));
    for (const std::string& family : ChatTemplate::known_names()) BOOST_TEST(msg.find(family) != std::string::npos);
  }
  // One changed byte in a known template is no longer that template: no guessing.
  const std::string text = nlohmann::json::parse(dtune::test::read_text(dtune::str(kData, "/tokenizers/llama3_1/tokenizer_config.json")))
                               .at("chat_template").get<std::string>();
  BOOST_CHECK_NO_THROW(ChatTemplate::recognise(text, "<|begin_of_text|>", "cfg"));
  BOOST_CHECK_THROW(ChatTemplate::recognise(dtune::str(text, " "), "<|begin_of_text|>", "cfg"), dtune::Error);
}

BOOST_AUTO_TEST_CASE(missing_config_and_missing_template_name_the_file) {
  dtune::test::ScratchDir dir("chat_template_missing");
  try {
    ChatTemplate::load(dir.path().string());
    BOOST_FAIL("expected an error");
  } catch (const dtune::Error& e) {
    BOOST_TEST(std::string(e.what()).find(dtune::str(dir.file("tokenizer_config.json"), ": no such file")) != std::string::npos);
  }
  dtune::test::write_text(dir.file("tokenizer_config.json"), R"({"bos_token": "<s>"})");
  try {
    ChatTemplate::load(dir.path().string());
    BOOST_FAIL("expected an error");
  } catch (const dtune::Error& e) {
    BOOST_TEST(starts_with(e.what(), dtune::str(dir.file("tokenizer_config.json"), ": no \"chat_template\"")));
  }
}

BOOST_AUTO_TEST_CASE(python_strip_matches_str_strip) {
  // Expected values: Python's str.strip() (the Jinja trim filter) on the same strings.
  BOOST_TEST(dtune::python_strip("  a b \n\t") == "a b");
  BOOST_TEST(dtune::python_strip("\xc2\xa0x\xe3\x80\x80") == "x");        // U+00A0, U+3000
  BOOST_TEST(dtune::python_strip("\xe2\x80\x8bx") == "\xe2\x80\x8bx");     // U+200B is not a space
  BOOST_TEST(dtune::python_strip("\x1f\x1cx\x0b") == "x");                // ASCII separators, VT
  BOOST_TEST(dtune::python_strip("\xc2\x85x\xe2\x80\xa8") == "x");        // U+0085, U+2028
  BOOST_TEST(dtune::python_strip(" \n ") == "");
}
