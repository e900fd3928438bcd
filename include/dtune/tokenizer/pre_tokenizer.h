// The tokenizer.json "pre_tokenizer" of a byte-level BPE: Split steps (the file's own regex,
// run with PCRE2 in UTF+UCP mode with JIT) followed by ByteLevel, possibly in a Sequence.
#pragma once

#include <deque>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace dtune {

class Regex;  // a compiled PCRE2 pattern (pre_tokenizer.cpp)

class PreTokenizer {
 public:
  // j: the "pre_tokenizer" value. Throws dtune::Error naming file and the JSON path of any
  // component that is unsupported or malformed, or when there is no final ByteLevel step
  // (only byte-level BPE is supported).
  static PreTokenizer from_json(const nlohmann::json& j, const std::string& file);

  // Appends the pre-tokens of normalized text to out, as raw bytes (the byte-level spelling
  // is left to the BPE model). Pieces view text, or strings kept in storage (a ByteLevel
  // add_prefix_space makes new strings). REQUIRES: text is valid UTF-8. Thread-safe.
  void split(std::string_view text, std::vector<std::string_view>& out,
             std::deque<std::string>& storage) const;

  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

 private:
  PreTokenizer();
  struct Step;
  void add_from_json(const nlohmann::json& j, const std::string& file, const std::string& where);
  std::vector<Step> steps_;
};

}  // namespace dtune
