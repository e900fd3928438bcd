// sha256_hex against Python hashlib (vectors in tests/fixtures/tokenizer/sha256.json).
#include "dtune/core/sha256.h"

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

BOOST_AUTO_TEST_CASE(sha256_matches_hashlib) {
  std::ifstream in(std::string(DTUNE_TEST_DATA) + "/tokenizer/sha256.json");
  BOOST_REQUIRE(in);
  const auto j = nlohmann::json::parse(in);
  BOOST_REQUIRE_GE(j["strings"].size(), 8u);
  for (auto it = j["strings"].begin(); it != j["strings"].end(); ++it) {
    BOOST_CHECK_EQUAL(dtune::sha256_hex(it.key()), it.value().get<std::string>());
  }
  for (auto it = j["tokenizers"].begin(); it != j["tokenizers"].end(); ++it) {
    std::ifstream f(std::string(DTUNE_TEST_DATA) + "/tokenizers/" + it.key() + "/tokenizer.json", std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    BOOST_CHECK_EQUAL(dtune::sha256_hex(ss.str()), it.value().get<std::string>());
  }
}
