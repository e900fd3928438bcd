// The trainer trains on `dtune pretokenize` presets and then asks the generation test with the
// generate layer's prompt forms: the prompt part of each data preset must be exactly the text
// the matching generate form produces, or the test question would not look like training data.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "dtune/data/prompt_template.h"
#include "dtune/generate/chat_format.h"

namespace {

// The prompt part of a data preset rendered with question in {Question}.
std::string preset_prompt(const std::string& preset, const std::string& question) {
  const dtune::PromptTemplate t = dtune::PromptTemplate::preset(preset);
  std::vector<std::string> values;
  for (const std::string& f : t.fields()) values.push_back(f == "Question" ? question : "<" + f + ">");
  std::string prompt, completion;
  t.render(values, prompt, completion);
  return prompt;
}

}  // namespace

BOOST_AUTO_TEST_CASE(recipe_preset_matches_recipe_form) {
  for (const std::string q : {"What causes pleuritic chest pain?", "", "multi\nline {braces}"}) {
    BOOST_TEST(preset_prompt("recipe", q) == dtune::format_recipe_prompt(q));
  }
}

BOOST_AUTO_TEST_CASE(r1_chat_preset_matches_r1_chat_form) {
  for (const std::string q : {"What causes pleuritic chest pain?", "multi\nline"}) {
    BOOST_TEST(preset_prompt("r1-chat", q) == dtune::format_r1_chat_prompt(q));
  }
}
