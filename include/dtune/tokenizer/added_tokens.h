// Added (special) tokens such as "<|begin_of_text|>": found in the text before normalization
// and pre-tokenization, leftmost-longest first as `tokenizers` does with aho-corasick.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dtune {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;      // dropped by decode(skip_special_tokens)
  bool single_word = false;  // match only when not inside a word
  bool lstrip = false;       // the match swallows white space on its left
  bool rstrip = false;       // ... and on its right
  bool normalized = false;   // matched in the normalized text instead of the raw text
};

class AddedTokenMatcher {
 public:
  // A part of the text: [begin, end) bytes; id is the added token's id, or -1 for plain text.
  struct Segment {
    std::size_t begin;
    std::size_t end;
    int32_t id;
  };

  AddedTokenMatcher() = default;
  // patterns[i] is what is searched for tokens[i] (its content, normalized when the token is
  // matched in normalized text). Empty patterns are ignored.
  AddedTokenMatcher(const std::vector<AddedToken>& tokens, const std::vector<std::string>& patterns);

  bool empty() const { return tokens_.empty(); }
  // Replaces out with the segments of text, in order, covering it without gaps.
  // REQUIRES: text is valid UTF-8.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  // Longest pattern matching at text[pos], as an index into tokens_, or -1.
  int longest_match_at(std::string_view text, std::size_t pos, std::size_t* len) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::string> patterns_;
  // Byte trie: node 0 is the root; edges_ maps (node << 8 | byte) -> child node.
  std::vector<int> terminal_;  // per node: index into tokens_, or -1
  std::vector<std::pair<uint64_t, int>> edges_sorted_;
  bool first_byte_[256] = {};
};

}  // namespace dtune
