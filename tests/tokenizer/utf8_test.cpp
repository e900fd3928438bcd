// UTF-8 validation and lossy repair; expected strings are Python's
// bytes.decode("utf-8", "replace"), which uses the same maximal-subpart rule as Rust.
#include "dtune/tokenizer/utf8.h"

#include <boost/test/unit_test.hpp>

using dtune::utf8::find_invalid;
using dtune::utf8::kValid;
using dtune::utf8::to_valid_lossy;

BOOST_AUTO_TEST_CASE(find_invalid_reports_offsets) {
  BOOST_CHECK_EQUAL(find_invalid("plain ascii"), kValid);
  BOOST_CHECK_EQUAL(find_invalid("caf\xC3\xA9 \xF0\x9F\x98\x80"), kValid);
  BOOST_CHECK_EQUAL(find_invalid("ab\xC3"), 2u);           // truncated
  BOOST_CHECK_EQUAL(find_invalid("\xC0\x80"), 0u);         // overlong
  BOOST_CHECK_EQUAL(find_invalid("x\xED\xA0\x80"), 1u);    // surrogate
  BOOST_CHECK_EQUAL(find_invalid("\xF4\x90\x80\x80"), 0u); // > U+10FFFF
}

BOOST_AUTO_TEST_CASE(lossy_matches_python_replace) {
  const std::string r = "\xEF\xBF\xBD";
  BOOST_CHECK_EQUAL(to_valid_lossy("ok"), "ok");
  BOOST_CHECK_EQUAL(to_valid_lossy("a\xE2\x82z"), "a" + r + "z");         // one U+FFFD per maximal subpart
  BOOST_CHECK_EQUAL(to_valid_lossy("\xF0\x9F\x98"), r);                   // truncated 4-byte sequence
  BOOST_CHECK_EQUAL(to_valid_lossy("\x80\x80"), r + r);                   // lone continuation bytes
  BOOST_CHECK_EQUAL(to_valid_lossy("\xED\xA0\x80"), r + r + r);           // surrogate: 3 replacements
  BOOST_CHECK_EQUAL(to_valid_lossy("\xE0\x80\xAF"), r + r + r);           // overlong 3-byte
  BOOST_CHECK_EQUAL(to_valid_lossy("\xF0\x9F\x98\x80\xFF"), "\xF0\x9F\x98\x80" + r);
}
