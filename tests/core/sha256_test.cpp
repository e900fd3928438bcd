// Sha256: FIPS 180-4 test vectors, and that piecewise updates equal a one-shot hash.
#include "dtune/core/sha256.h"

#include <boost/test/unit_test.hpp>

#include "../data/test_files.h"

namespace {
std::string hash(std::string_view s) {
  dtune::Sha256 h;
  h.update(s);
  return h.hex_digest();
}
}  // namespace

BOOST_AUTO_TEST_CASE(known_vectors) {
  BOOST_TEST(hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BOOST_TEST(hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  BOOST_TEST(hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  BOOST_TEST(hash(std::string(1000000, 'a')) ==
             "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

BOOST_AUTO_TEST_CASE(piecewise_equals_one_shot_and_file) {
  std::string data;
  for (int i = 0; i < 5000; ++i) data += static_cast<char>(i * 31);
  dtune::Sha256 h;
  for (size_t i = 0, step = 1; i < data.size(); i += step, step = step % 97 + 1) {
    h.update(std::string_view(data).substr(i, step));
  }
  BOOST_TEST(h.hex_digest() == hash(data));
  dtune::test::ScratchDir dir("sha");
  dtune::test::write_text(dir.file("f"), data);
  BOOST_TEST(dtune::sha256_file(dir.file("f")) == hash(data));
}
