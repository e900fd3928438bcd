// Tests src/generate/chat_format.cpp against tokenizer.apply_chat_template(add_generation_prompt=
// True) (fixture from `scripts/generate_oracle.py chat`) and the recipe's training forms.
#include "dtune/generate/chat_format.h"

#include <fstream>
#include <string>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/tokenizer/tokenizer.h"

namespace {

bool message_has(const dtune::Error& e, const std::string& what) {
  return std::string(e.what()).find(what) != std::string::npos;
}

}  // namespace

// Exact string equality with transformers' rendering of the model's own template.
BOOST_AUTO_TEST_CASE(chat_prompt_equals_apply_chat_template) {
  std::ifstream in(std::string(DTUNE_TEST_DATA) + "/generate/chat_formats.json");
  BOOST_REQUIRE(in);
  const auto fixture = nlohmann::json::parse(in);
  int supported = 0;
  for (const auto& c : fixture["cases"]) {
    const std::string dir = std::string(DTUNE_SOURCE_DIR) + "/" + c["dir"].get<std::string>();
    BOOST_TEST_INFO(c["name"].get<std::string>());
    if (!c["supported"].get<bool>()) {
      BOOST_CHECK_EXCEPTION(dtune::load_chat_format(dir), dtune::Error,
                            [](const dtune::Error& e) { return message_has(e, "--no-chat"); });
      continue;
    }
    const dtune::FormattedPrompt p = dtune::format_prompt("chat", c["prompt"].get<std::string>(), dir);
    BOOST_TEST(p.text == c["text"].get<std::string>());
    BOOST_TEST(!p.add_special_tokens);
    ++supported;
  }
  BOOST_TEST(supported == 3);
}

BOOST_AUTO_TEST_CASE(detects_styles_and_their_variable_parts) {
  // A Qwen2.5-like template: the default system turn written with Jinja "\n" escapes.
  const std::string qwen25 =
      "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
      "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, a helpful assistant.<|im_end|>\\n' }}"
      "{%- endif %}{{'<|im_start|>assistant\\n'}}";
  const dtune::ChatFormat q = dtune::detect_chat_format(qwen25, "");
  BOOST_TEST((q.style == dtune::ChatStyle::kChatML));
  BOOST_TEST(q.system_message == "You are Qwen, a helpful assistant.");
  BOOST_TEST(dtune::format_chat_prompt(q, "hi") ==
             "<|im_start|>system\nYou are Qwen, a helpful assistant.<|im_end|>\n"
             "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");

  // A DeepSeek-R1 distill template that opens the thinking block after the assistant tag.
  const std::string r1 =
      "{{bos_token}}{{'<\xef\xbd\x9cUser\xef\xbd\x9c>' + message['content']}}"
      "{% if add_generation_prompt %}{{'<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\\n'}}{% endif %}";
  const dtune::ChatFormat d = dtune::detect_chat_format(r1, "<s>");
  BOOST_TEST((d.style == dtune::ChatStyle::kDeepSeekR1));
  BOOST_TEST(dtune::format_chat_prompt(d, "hi") ==
             "<s><\xef\xbd\x9cUser\xef\xbd\x9c>hi<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\n");

  BOOST_CHECK_EXCEPTION(dtune::detect_chat_format("{{ messages }}", ""), dtune::Error,
                        [](const dtune::Error& e) { return message_has(e, "--no-chat"); });
}

BOOST_AUTO_TEST_CASE(training_forms_match_the_recipe) {
  BOOST_TEST(dtune::format_recipe_prompt("Why?") ==
             "Please reason step by step:\n\nQuestion: Why?\n\nLet's solve this step by step:\n");
  const dtune::FormattedPrompt r = dtune::format_prompt("recipe", "Why?", "");
  BOOST_TEST(r.add_special_tokens);
  BOOST_TEST(dtune::format_prompt("r1-chat", "Why?", "").text ==
             "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c><\xef\xbd\x9cUser\xef\xbd\x9c>Why?"
             "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\n");
  BOOST_TEST(dtune::format_prompt("none", "Why?", "").text == "Why?");
  BOOST_CHECK_EXCEPTION(dtune::format_prompt("alpaca", "Why?", ""), dtune::Error,
                        [](const dtune::Error& e) { return message_has(e, "recipe"); });
  BOOST_CHECK_EXCEPTION(dtune::load_chat_format("/nonexistent"), dtune::Error,
                        [](const dtune::Error& e) { return message_has(e, "tokenizer_config.json"); });
}

// `generate --chat` on Llama 3 and the real Llama 3.1 Instruct tokenizer_config.json (rendered by
// data/chat_template.h, the one home of native templates): the token ids equal
// apply_chat_template(add_generation_prompt=True) with and without a system message (fixtures
// tests/fixtures/data/chat_<case>.json, generation_prompts, from scripts/gen_chat_fixtures.py).
BOOST_AUTO_TEST_CASE(llama3_chat_prompt_ids_equal_apply_chat_template) {
  const std::string root = DTUNE_SOURCE_DIR;
  const dtune::Tokenizer tok = dtune::Tokenizer::load(root + "/tests/fixtures/tokenizers/llama3_1");
  for (const std::string c : {"llama3", "llama3_1_instruct"}) {
    std::ifstream in(std::string(DTUNE_TEST_DATA) + "/data/chat_" + c + ".json");
    BOOST_REQUIRE(in);
    const auto fx = nlohmann::json::parse(in);
    const std::string config = root + "/" + fx["chat_template"].get<std::string>();
    const std::string dir = config.substr(0, config.rfind('/'));
    int checked = 0;
    for (const auto& g : fx["generation_prompts"]) {
      std::string system, user;
      for (const auto& m : g["messages"]) (m["role"] == "system" ? system : user) = m["content"].get<std::string>();
      BOOST_TEST_INFO(c << (system.empty() ? " without" : " with") << " a system message");
      const dtune::FormattedPrompt p = dtune::format_prompt("chat", user, dir, system);
      BOOST_TEST(!p.add_special_tokens);
      BOOST_TEST(tok.encode(p.text, p.add_special_tokens) == g["ids"].get<std::vector<int32_t>>(),
                 boost::test_tools::per_element());
      ++checked;
    }
    BOOST_TEST(checked == 2);
  }
}
