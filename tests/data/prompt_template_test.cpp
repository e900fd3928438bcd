// PromptTemplate: the two presets split exactly where the brief says, brace escapes, custom
// field names from a template file, and the syntax errors.
#include "dtune/data/prompt_template.h"

#include <boost/test/unit_test.hpp>

#include "dtune/core/error.h"
#include "test_files.h"

using dtune::PromptTemplate;

namespace {

std::string error_of(const std::string& text) {
  try {
    PromptTemplate::parse(text, "t");
  } catch (const dtune::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(recipe_preset_splits_after_the_step_by_step_line) {
  const PromptTemplate t = PromptTemplate::preset("recipe");
  BOOST_TEST(t.fields() == (std::vector<std::string>{"Question", "Complex_CoT", "Response"}),
             boost::test_tools::per_element());
  std::string prompt, completion;
  t.render({"Q?", "think", "A."}, prompt, completion);
  BOOST_TEST(prompt == "Please reason step by step:\n\nQuestion: Q?\n\nLet's solve this step by step:\n");
  BOOST_TEST(completion == "think\n\nFinal Answer: A.");
}

BOOST_AUTO_TEST_CASE(r1_chat_preset_splits_after_think) {
  const PromptTemplate t = PromptTemplate::preset("r1-chat");
  std::string prompt, completion;
  t.render({"Q?", "think", "A."}, prompt, completion);
  BOOST_TEST(prompt ==
             "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c><\xef\xbd\x9cUser"
             "\xef\xbd\x9c>Q?<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\n");
  BOOST_TEST(completion == "think\n</think>\n\nA.");
}

BOOST_AUTO_TEST_CASE(escapes_and_repeated_fields) {
  const PromptTemplate t = PromptTemplate::parse("{{x}} {a}/{b}{@completion}{a}}}", "t");
  BOOST_TEST(t.fields() == (std::vector<std::string>{"a", "b"}), boost::test_tools::per_element());
  std::string prompt, completion;
  t.render({"1", "2"}, prompt, completion);
  BOOST_TEST(prompt == "{x} 1/2");
  BOOST_TEST(completion == "1}");
}

BOOST_AUTO_TEST_CASE(template_file_drops_one_final_newline_and_names_its_fields) {
  dtune::test::ScratchDir dir("tmpl_file");
  dtune::test::write_text(dir.file("t.txt"), "### {instruction}\n{@completion}{output}\n\n");
  const PromptTemplate t = PromptTemplate::load_file(dir.file("t.txt"));
  BOOST_TEST(t.fields() == (std::vector<std::string>{"instruction", "output"}),
             boost::test_tools::per_element());
  std::string prompt, completion;
  t.render({"do", "done"}, prompt, completion);
  BOOST_TEST(prompt == "### do\n");
  BOOST_TEST(completion == "done\n");  // two newlines in the file: one kept
  BOOST_TEST(t.name() == dir.file("t.txt"));
}

BOOST_AUTO_TEST_CASE(syntax_errors_are_reported_with_the_position) {
  BOOST_TEST(error_of("{a}").find("no {@completion} marker") != std::string::npos);
  BOOST_TEST(error_of("{a}{@completion}{b}{@completion}").find("appears twice") != std::string::npos);
  BOOST_TEST(error_of("x{a{@completion}").find("'{' at byte 1") != std::string::npos);
  BOOST_TEST(error_of("{@completion} }").find("lone '}' at byte 14") != std::string::npos);
  BOOST_TEST(error_of("{}{@completion}").find("empty field name") != std::string::npos);
  BOOST_TEST(error_of("{@prompt}{@completion}").find("unknown directive") != std::string::npos);
  try {
    PromptTemplate::preset("chatml");
    BOOST_FAIL("expected an error");
  } catch (const dtune::Error& e) {
    BOOST_TEST(std::string(e.what()).find("recipe, r1-chat") != std::string::npos);
  }
}
