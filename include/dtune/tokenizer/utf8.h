// UTF-8 helpers shared by the tokenizer stages: validation, code point iteration, and the
// lossy conversion that `tokenizers` (Rust's String::from_utf8_lossy) applies when decoding.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dtune::utf8 {

constexpr std::size_t kValid = static_cast<std::size_t>(-1);

// Byte offset of the first ill-formed sequence in s, or kValid when s is well-formed UTF-8.
std::size_t find_invalid(std::string_view s);

// Decodes the code point at s[i] and advances i past it. REQUIRES: s is valid UTF-8.
char32_t next(std::string_view s, std::size_t& i);

// Code point of the last character of s (which must be valid UTF-8 and non-empty), and its
// byte offset in *start.
char32_t last(std::string_view s, std::size_t* start);

void append(std::string& out, char32_t cp);

// s with every maximal ill-formed subsequence replaced by U+FFFD (Unicode "maximal subpart"
// practice, which is what Rust's from_utf8_lossy and hence `tokenizers` decode do).
std::string to_valid_lossy(std::string_view s);

// Unicode White_Space property (Rust's char::is_whitespace).
bool is_white_space(char32_t cp);

}  // namespace dtune::utf8
