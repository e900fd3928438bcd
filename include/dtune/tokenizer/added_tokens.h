// Added (special) tokens such as "<|begin_of_text|>": found in the text before normalization
// and pre-tokenization, leftmost-longest first as `tokenizers` does with aho-corasick.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
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

// The ids `tokenizers` gives the added_tokens of a tokenizer.json (AddedVocabulary::add_tokens,
// called in file order when the file is loaded), whatever ids the file declares: a token whose
// content is a vocabulary token gets that token's id; any other gets the next free id: the
// model's vocabulary size (its number of entries, model_vocab_entries) for the first, then one
// past the largest id given so far while that is >= the vocabulary size. A token whose content
// came earlier keeps the first id (it is special if any of its entries is); an empty content is
// skipped. So a gap in the declared ids closes, a declared id that is already a vocabulary
// token's is not used, and out-of-order ids follow file order. Returns the tokens with their ids;
// each token whose id differs from the declared one is named in warnings ("FILE: added token
// '<|b|>' declares id 49160 but `tokenizers` gives it id 49153 ...").
// model_token_id: the vocabulary id of a content (nullopt when it is not a vocabulary token).
template <class ModelTokenId>
std::vector<AddedToken> assign_added_token_ids(const std::vector<AddedToken>& declared, int32_t model_vocab_entries,
                                               const ModelTokenId& model_token_id, const std::string& file,
                                               std::vector<std::string>& warnings);

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

template <class ModelTokenId>
std::vector<AddedToken> assign_added_token_ids(const std::vector<AddedToken>& declared, int32_t model_vocab_entries,
                                               const ModelTokenId& model_token_id, const std::string& file,
                                               std::vector<std::string>& warnings) {
  std::vector<AddedToken> out;
  int32_t max_assigned = -1;  // largest id given to an added token so far
  for (const AddedToken& d : declared) {
    if (d.content.empty()) continue;
    auto same = std::find_if(out.begin(), out.end(), [&](const AddedToken& a) { return a.content == d.content; });
    if (same != out.end()) {  // an earlier entry of the same content: its id stays
      same->special = same->special || d.special;
      if (d.id != same->id)
        warnings.push_back(file + ": added token '" + d.content + "' declares id " + std::to_string(d.id) +
                           " but repeats an earlier entry, so `tokenizers` keeps id " + std::to_string(same->id));
      continue;
    }
    AddedToken a = d;
    if (const std::optional<int32_t> vocab_id = model_token_id(d.content)) {
      a.id = *vocab_id;
    } else if (max_assigned < 0) {
      a.id = model_vocab_entries;
    } else {
      a.id = (max_assigned >= model_vocab_entries || model_vocab_entries == 0) ? max_assigned + 1 : model_vocab_entries;
    }
    max_assigned = std::max(max_assigned, a.id);
    if (a.id != d.id)
      warnings.push_back(file + ": added token '" + d.content + "' declares id " + std::to_string(d.id) +
                         " but `tokenizers` (and transformers) give it id " + std::to_string(a.id) +
                         ", as dtune does; fix the id in the file if the model was trained with the declared one");
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace dtune
