// libFuzzer target: arbitrary bytes -> Tokenizer::encode (with and without special tokens) and
// decode of the same bytes read as ids. Invalid UTF-8 must give dtune::Error, never a crash;
// valid text must round-trip: decode(encode(text)) == text. Build/run: see CMakeLists.txt here.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "dtune/core/error.h"
#include "dtune/tokenizer/tokenizer.h"
#include "dtune/tokenizer/utf8.h"

namespace {

const dtune::Tokenizer& tokenizer() {
  static const dtune::Tokenizer tok = [] {
    const char* env = std::getenv("FUZZ_TOKENIZER");
    return dtune::Tokenizer::load(env ? env : DTUNE_FUZZ_DEFAULT_TOKENIZER);
  }();
  return tok;
}

}  // namespace

namespace {

// Encodes text; valid UTF-8 must encode and (byte-level BPE being lossless) decode back to
// itself, invalid UTF-8 must give dtune::Error. The round trip is not checked for tokenizers
// with a normalizer (FUZZ_NO_ROUND_TRIP set), which may change the text.
void check_encode(const dtune::Tokenizer& tok, std::string_view text) {
  const bool valid = dtune::utf8::find_invalid(text) == dtune::utf8::kValid;
  try {
    const auto ids = tok.encode(text, false);
    const auto with_special = tok.encode(text, true);
    if (!valid || with_special.size() < ids.size()) std::abort();
    if (!std::getenv("FUZZ_NO_ROUND_TRIP") && tok.decode(ids, false) != text) std::abort();
  } catch (const dtune::Error&) {
    if (valid) std::abort();
  }
}

}  // namespace

// Loads the tokenizer before the first input (9 MB of JSON: seconds under ASan), so that its
// load does not count against -timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const dtune::Tokenizer& tok = tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_encode(tok, text);
  check_encode(tok, dtune::utf8::to_valid_lossy(text));  // reaches the pipeline past validation
  std::vector<int32_t> ids(size / 4);
  if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
  const std::string decoded = tok.decode(ids, size % 2 == 0);
  if (dtune::utf8::find_invalid(decoded) != dtune::utf8::kValid) std::abort();
  return 0;
}
