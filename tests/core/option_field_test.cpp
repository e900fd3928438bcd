// Option fields (core/option_field.h): how callers spell an option, fields reached through an
// embedding struct, and the shared checks' messages.
#include "dtune/core/option_field.h"

#include <boost/test/unit_test.hpp>

namespace dtune {
namespace {

struct Inner {
  double top_p = 0.5;
  std::vector<std::string> names{"a"};
};

struct Outer {
  int64_t max_new_tokens = 3;
  Inner inner;
};

}  // namespace

BOOST_AUTO_TEST_CASE(names_as_the_caller_spells_them) {
  BOOST_TEST(OptionNames::config_section("generate")("top_p") == "generate.top_p");
  BOOST_TEST(OptionNames::command_line()("repetition_penalty") == "--repetition-penalty");
  BOOST_TEST(flag_name("max_new_tokens") == "max-new-tokens");
}

BOOST_AUTO_TEST_CASE(nested_fields_reach_the_inner_struct) {
  const std::vector<OptionField<Inner>> inner = {DTUNE_OPTION_FIELD(Inner, "top_p", top_p, "mass"),
                                                 DTUNE_OPTION_FIELD(Inner, "names", names, "list")};
  const auto outer = nest_option_fields<Outer>(inner, [](Outer& o) -> Inner& { return o.inner; });
  BOOST_TEST_REQUIRE(outer.size() == 2u);
  BOOST_TEST(std::string(outer[0].key) == "top_p");
  BOOST_TEST(std::string(outer[0].help) == "mass");
  Outer o;
  std::get<OptionField<Outer>::Ref<double>>(outer[0].access)(o) = 0.9;
  BOOST_TEST(o.inner.top_p == 0.9);
  std::get<OptionField<Outer>::Ref<std::vector<std::string>>>(outer[1].access)(o).push_back("b");
  BOOST_TEST(o.inner.names.size() == 2u);
}

BOOST_AUTO_TEST_CASE(checks_name_the_option_value_and_rule) {
  try {
    require_option(false, "lora.r", 0, "must be > 0");
    BOOST_FAIL("no error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()) == "option lora.r must be > 0, got 0");
  }
  try {
    require_option_one_of("tpu", "train.device", {"auto", "cpu", "cuda"});
    BOOST_FAIL("no error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()) == "option train.device must be one of auto | cpu | cuda, got 'tpu'");
  }
  BOOST_CHECK_NO_THROW(require_option_one_of("cpu", "train.device", {"auto", "cpu", "cuda"}));
}

}  // namespace dtune
