// GPT-2's bytes_to_unicode table: printable Latin-1 bytes stand for themselves, the other 68
// bytes map in order to U+0100.. (so 0x20 -> U+0120 'Ġ', 0x0A -> U+010A 'Ċ').
#include "dtune/tokenizer/byte_level.h"

#include <array>
#include <cstdint>

#include "dtune/tokenizer/utf8.h"

namespace dtune::byte_level {
namespace {

struct Tables {
  std::array<std::string, 256> spelling;
  // Every alphabet character is below U+0144; -1 marks code points outside the alphabet.
  static constexpr char32_t kLimit = 0x144;
  std::array<int16_t, kLimit> byte_of_char;

  Tables() {
    byte_of_char.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t cp = printable ? char32_t(b) : char32_t(256 + extra++);
      utf8::append(spelling[b], cp);
      byte_of_char[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& char_of_byte(unsigned char b) { return tables().spelling[b]; }

std::string encode(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.spelling[static_cast<unsigned char>(c)];
  return out;
}

std::optional<std::string> decode(std::string_view token) {
  if (utf8::find_invalid(token) != utf8::kValid) return std::nullopt;
  const Tables& t = tables();
  std::string out;
  out.reserve(token.size());
  std::size_t i = 0;
  while (i < token.size()) {
    const char32_t cp = utf8::next(token, i);
    if (cp >= Tables::kLimit || t.byte_of_char[cp] < 0) return std::nullopt;
    out += static_cast<char>(t.byte_of_char[cp]);
  }
  return out;
}

}  // namespace dtune::byte_level
