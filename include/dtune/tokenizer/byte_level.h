// The GPT-2 byte-level alphabet: each of the 256 byte values is shown as one printable
// Unicode character ("Ġ" for a space), so every byte string has a token spelling.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dtune::byte_level {

// UTF-8 spelling of the alphabet character that stands for byte b.
const std::string& char_of_byte(unsigned char b);

// Spells raw bytes in the byte-level alphabet ("a b" -> "aĠb").
std::string encode(std::string_view bytes);

// Raw bytes of a byte-level token ("aĠb" -> "a b"); nullopt when some character of token is
// not in the alphabet (e.g. an added token such as "<｜User｜>"), which `tokenizers`' ByteLevel
// decoder then emits as the token's own UTF-8 bytes.
std::optional<std::string> decode(std::string_view token);

}  // namespace dtune::byte_level
