// Split behaviors, invert, ByteLevel add_prefix_space and the GPT-2 regex; expected pieces are
// from tokenizers.pre_tokenizers (0.23.3) pre_tokenize_str on the same input.
#include "dtune/tokenizer/pre_tokenizer.h"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "dtune/tokenizer/byte_level.h"

namespace {

std::vector<std::string> pieces(const nlohmann::json& config, const std::string& text) {
  const auto pre = dtune::PreTokenizer::from_json(config, "test.json");
  std::vector<std::string_view> out;
  std::deque<std::string> storage;
  pre.split(text, out, storage);
  std::vector<std::string> spelled;
  for (auto p : out) spelled.push_back(dtune::byte_level::encode(p));
  return spelled;
}

nlohmann::json split_then_byte_level(const std::string& behavior, bool invert) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", "-"}}}, {"behavior", behavior}, {"invert", invert}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
}

using V = std::vector<std::string>;

}  // namespace

BOOST_AUTO_TEST_CASE(split_behaviors_match_tokenizers) {
  const std::string t = "a-b--c d-";
  BOOST_CHECK(pieces(split_then_byte_level("Removed", false), t) == (V{"a", "b", "cĠd"}));
  BOOST_CHECK(pieces(split_then_byte_level("Removed", true), t) == (V{"-", "-", "-", "-"}));
  BOOST_CHECK(pieces(split_then_byte_level("Isolated", false), t) == (V{"a", "-", "b", "-", "-", "cĠd", "-"}));
  BOOST_CHECK(pieces(split_then_byte_level("MergedWithPrevious", false), t) == (V{"a-", "b-", "-", "cĠd-"}));
  BOOST_CHECK(pieces(split_then_byte_level("MergedWithPrevious", true), t) == (V{"a", "-b", "-", "-cĠd", "-"}));
  BOOST_CHECK(pieces(split_then_byte_level("MergedWithNext", false), t) == (V{"a", "-b", "-", "-cĠd", "-"}));
  BOOST_CHECK(pieces(split_then_byte_level("MergedWithNext", true), t) == (V{"a-", "b-", "-", "cĠd-"}));
  BOOST_CHECK(pieces(split_then_byte_level("Contiguous", false), t) == (V{"a", "-", "b", "--", "cĠd", "-"}));
}

BOOST_AUTO_TEST_CASE(byte_level_prefix_space_and_gpt2_regex) {
  const nlohmann::json gpt2 = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  BOOST_CHECK(pieces(gpt2, "Hello  world\xC2\x85x it's") ==
              (V{"ĠHello", "Ġ", "Ġworld", "Âħ", "x", "Ġit", "'s"}));
  // U+0085 counts as \s (Oniguruma), so " " and NEL are separate pieces.
  const nlohmann::json no_prefix = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  BOOST_CHECK(pieces(no_prefix, "a \xC2\x85" "b  c\xE3\x80\x80\xE3\x80\x80" "d") ==
              (V{"a", "Ġ", "Âħ", "b", "Ġ", "Ġc", "ãĢĢ", "ãĢĢ", "d"}));
  // add_prefix_space applies to every piece left by the earlier Split steps.
  const nlohmann::json seq = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", "\\d"}}}, {"behavior", "Isolated"}},
        {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", false}}}}};
  BOOST_CHECK(pieces(seq, "ab1 c2") == (V{"Ġab", "Ġ1", "Ġc", "Ġ2"}));
}
