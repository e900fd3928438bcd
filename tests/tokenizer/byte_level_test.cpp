// The GPT-2 byte-level alphabet: spot values from GPT-2's bytes_to_unicode and a round trip.
#include "dtune/tokenizer/byte_level.h"

#include <boost/test/unit_test.hpp>

BOOST_AUTO_TEST_CASE(alphabet_matches_gpt2) {
  namespace bl = dtune::byte_level;
  BOOST_CHECK_EQUAL(bl::char_of_byte(' '), "\xC4\xA0");   // U+0120 'Ġ'
  BOOST_CHECK_EQUAL(bl::char_of_byte('\n'), "\xC4\x8A");  // U+010A 'Ċ'
  BOOST_CHECK_EQUAL(bl::char_of_byte('a'), "a");
  BOOST_CHECK_EQUAL(bl::char_of_byte(0xAD), "\xC5\x83");  // soft hyphen -> U+0143 (the 68th remap)
  BOOST_CHECK_EQUAL(bl::char_of_byte(0xE9), "\xC3\xA9");  // Latin-1 printable maps to itself
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  BOOST_CHECK(bl::decode(bl::encode(all)) == all);
  BOOST_CHECK(!bl::decode("<\xEF\xBD\x9C" "User\xEF\xBD\x9C>"));  // '｜' is not in the alphabet
}
