// Leftmost-longest search for added tokens over a byte trie, with the single_word, lstrip and
// rstrip rules of `tokenizers`' AddedVocabulary.
#include "dtune/tokenizer/added_tokens.h"

#include <algorithm>
#include <utf8proc.h>

#include "dtune/tokenizer/utf8.h"

namespace dtune {
namespace {

// A "word" character for single_word: letters, marks, numbers and connector punctuation.
bool is_word_char(char32_t cp) {
  if (cp == '_') return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

uint64_t edge_key(int node, unsigned char b) { return (uint64_t(node) << 8) | b; }

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens,
                                     const std::vector<std::string>& patterns) {
  terminal_.push_back(-1);
  std::vector<std::pair<uint64_t, int>> edges;
  auto child = [&](int node, unsigned char b) {
    for (const auto& e : edges) {  // building only: small, linear is fine
      if (e.first == edge_key(node, b)) return e.second;
    }
    return -1;
  };
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    const int index = static_cast<int>(tokens_.size());
    tokens_.push_back(tokens[t]);
    patterns_.push_back(p);
    first_byte_[static_cast<unsigned char>(p[0])] = true;
    int node = 0;
    for (char c : p) {
      const auto b = static_cast<unsigned char>(c);
      int next = child(node, b);
      if (next < 0) {
        next = static_cast<int>(terminal_.size());
        terminal_.push_back(-1);
        edges.emplace_back(edge_key(node, b), next);
      }
      node = next;
    }
    if (terminal_[node] < 0) terminal_[node] = index;  // first definition of a duplicate wins
  }
  std::sort(edges.begin(), edges.end());
  edges_sorted_ = std::move(edges);
}

int AddedTokenMatcher::longest_match_at(std::string_view text, std::size_t pos, std::size_t* len) const {
  int node = 0, best = -1;
  for (std::size_t i = pos; i < text.size(); ++i) {
    const uint64_t key = edge_key(node, static_cast<unsigned char>(text[i]));
    auto it = std::lower_bound(edges_sorted_.begin(), edges_sorted_.end(), std::make_pair(key, -1));
    if (it == edges_sorted_.end() || it->first != key) break;
    node = it->second;
    if (terminal_[node] >= 0) {
      best = terminal_[node];
      *len = i + 1 - pos;
    }
  }
  return best;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  out.clear();
  std::size_t start_offset = 0;  // end of the last emitted segment
  std::size_t pos = 0;           // where the search resumes
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    std::size_t len = 0;
    const int t = longest_match_at(text, pos, &len);
    if (t < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[t];
    std::size_t start = pos, stop = pos + len;
    pos = stop;
    if (tok.single_word) {
      std::size_t s = 0;
      const bool start_space = start == 0 || !is_word_char(utf8::last(text.substr(0, start), &s));
      std::size_t k = stop;
      const bool stop_space = stop == text.size() || !is_word_char(utf8::next(text, k));
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) {
      std::size_t s = start;
      while (s > start_offset) {
        std::size_t prev = 0;
        if (!utf8::is_white_space(utf8::last(text.substr(0, s), &prev))) break;
        s = prev;
      }
      start = s;
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        std::size_t k = stop;
        if (!utf8::is_white_space(utf8::next(text, k))) break;
        stop = k;
      }
      pos = stop;
    }
    if (start > start_offset) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, tok.id});
    start_offset = stop;
  }
  if (start_offset < text.size() || out.empty()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace dtune
