// Split (PCRE2, UTF+UCP, JIT) and ByteLevel pre-tokenization with `tokenizers`' semantics:
// matches are found left to right in each piece, then kept, merged or dropped per "behavior".
#include "dtune/tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"

namespace dtune {

namespace {

// The GPT-2 pattern that ByteLevel uses when use_regex is true.
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// Oniguruma (which `tokenizers` uses) counts U+0085 NEXT LINE as \s; PCRE2 with UCP does not.
// Rewrites \s as [\s\x{85}] (inside a class: \s\x{85}) and \S as [^\s\x{85}] so both agree.
std::string rewrite_pattern(const std::string& p) {
  std::string out;
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      if (e == 's') {
        out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      } else if (e == 'S' && !in_class) {
        out += "[^\\s\\x{85}]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
      const std::size_t end = p.find(":]", i + 2);
      if (end != std::string::npos) {
        out.append(p, i, end + 2 - i);
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

class Regex {
 public:
  Regex(const std::string& pattern, bool literal, const std::string& where) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    const std::string p = literal ? pattern : rewrite_pattern(pattern);
    uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK;
    if (literal) options = PCRE2_UTF | PCRE2_LITERAL | PCRE2_NO_UTF_CHECK;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), options, &err, &err_off, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error(str(where, ": cannot compile the regex /", pattern, "/ at offset ", err_off, ": ",
                      reinterpret_cast<const char*>(msg)));
    }
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() { pcre2_code_free(code_); }

  // Finds the first match in s at or after start; returns false when there is none.
  bool find(std::string_view s, std::size_t start, std::size_t* begin, std::size_t* end) const;

 private:
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

namespace {

// Per-thread match data and JIT stack (pcre2 match data must not be shared across threads).
struct MatchScratch {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  MatchScratch() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchScratch() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Piece {
  std::size_t begin, end;
  bool is_match;
};

}  // namespace

bool Regex::find(std::string_view s, std::size_t start, std::size_t* begin, std::size_t* end) const {
  MatchScratch& m = scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  const int rc = jit_ ? pcre2_jit_match(code_, subject, s.size(), start, 0, m.data, m.context)
                      : pcre2_match(code_, subject, s.size(), start, PCRE2_NO_UTF_CHECK, m.data, m.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    throw Error(str("pre-tokenizer regex failed on a text of ", s.size(),
                    " bytes: ", reinterpret_cast<const char*>(msg)));
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(m.data);
  *begin = ov[0];
  *end = ov[1];
  return true;
}

struct PreTokenizer::Step {
  bool byte_level = false;
  bool add_prefix_space = false;  // ByteLevel: prepend " " to each piece not starting with one
  std::unique_ptr<Regex> regex;   // Split pattern, or the GPT-2 pattern of ByteLevel
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j, const std::string& file) {
  PreTokenizer p;
  p.add_from_json(j, file, "pre_tokenizer");
  DTUNE_CHECK(!p.steps_.empty() && p.steps_.back().byte_level, file,
              ": pre_tokenizer must end with a ByteLevel step: dtune supports byte-level BPE "
              "tokenizers only (GPT-2, Llama 3, Qwen, DeepSeek style)");
  for (std::size_t i = 0; i + 1 < p.steps_.size(); ++i) {
    DTUNE_CHECK(!p.steps_[i].byte_level, file,
                ": pre_tokenizer has a ByteLevel step before its last step; dtune needs ByteLevel last");
  }
  return p;
}

void PreTokenizer::add_from_json(const nlohmann::json& j, const std::string& file, const std::string& where) {
  DTUNE_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(), file, ": ", where,
              " must be an object with a \"type\" (byte-level BPE needs a ByteLevel pre-tokenizer)");
  const std::string type = j["type"].get<std::string>();
  auto flag = [&](const char* key, bool dflt) {
    if (!j.contains(key) || j[key].is_null()) return dflt;
    DTUNE_CHECK(j[key].is_boolean(), file, ": ", where, ".", key, " must be true or false");
    return j[key].get<bool>();
  };
  if (type == "Sequence") {
    DTUNE_CHECK(j.contains("pretokenizers") && j["pretokenizers"].is_array(), file, ": ", where,
                ".pretokenizers must be an array");
    for (std::size_t i = 0; i < j["pretokenizers"].size(); ++i) {
      add_from_json(j["pretokenizers"][i], file, str(where, ".pretokenizers[", i, "]"));
    }
  } else if (type == "ByteLevel") {
    Step s;
    s.byte_level = true;
    s.add_prefix_space = flag("add_prefix_space", true);
    if (flag("use_regex", true)) s.regex = std::make_unique<Regex>(kGpt2Pattern, false, file + ": " + where);
    steps_.push_back(std::move(s));
  } else if (type == "Split") {
    Step s;
    const std::string at = str(file, ": ", where);
    DTUNE_CHECK(j.contains("pattern") && j["pattern"].is_object(), at, ".pattern must be {\"Regex\": ...} or {\"String\": ...}");
    const auto& pat = j["pattern"];
    if (pat.contains("Regex") && pat["Regex"].is_string()) {
      s.regex = std::make_unique<Regex>(pat["Regex"].get<std::string>(), false, at + ".pattern.Regex");
    } else if (pat.contains("String") && pat["String"].is_string()) {
      s.regex = std::make_unique<Regex>(pat["String"].get<std::string>(), true, at + ".pattern.String");
    } else {
      throw Error(at + ".pattern must be {\"Regex\": \"...\"} or {\"String\": \"...\"}");
    }
    const std::string behavior = j.value("behavior", std::string("Isolated"));
    if (behavior == "Removed") s.behavior = Behavior::kRemoved;
    else if (behavior == "Isolated") s.behavior = Behavior::kIsolated;
    else if (behavior == "MergedWithPrevious") s.behavior = Behavior::kMergedWithPrevious;
    else if (behavior == "MergedWithNext") s.behavior = Behavior::kMergedWithNext;
    else if (behavior == "Contiguous") s.behavior = Behavior::kContiguous;
    else throw Error(str(at, ".behavior \"", behavior, "\" is not one of Removed, Isolated, "
                         "MergedWithPrevious, MergedWithNext, Contiguous"));
    s.invert = flag("invert", false);
    steps_.push_back(std::move(s));
  } else {
    throw Error(str(file, ": ", where, ".type \"", type,
                    "\" is not supported (dtune supports Split, ByteLevel and Sequence, i.e. byte-level BPE)"));
  }
}

namespace {

// Splits text into matched / unmatched pieces (as `tokenizers`' Pattern::find_matches).
void find_pieces(const Regex& re, std::string_view text, std::vector<Piece>& out) {
  out.clear();
  std::size_t prev = 0, pos = 0, b = 0, e = 0;
  while (pos <= text.size() && re.find(text, pos, &b, &e)) {
    if (e == b) {  // empty match: not a piece; step over one character
      if (b >= text.size()) break;
      pos = b + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    if (b > prev) out.push_back({prev, b, false});
    out.push_back({b, e, true});
    prev = pos = e;
  }
  if (prev < text.size()) out.push_back({prev, text.size(), false});
}

// Applies invert and behavior to the pieces, in place (as NormalizedString::split).
void apply_behavior(Behavior behavior, bool invert, std::vector<Piece>& pieces) {
  if (invert) {
    for (Piece& p : pieces) p.is_match = !p.is_match;
  }
  std::vector<Piece> out;
  out.reserve(pieces.size());
  bool previous_match = false;
  switch (behavior) {
    case Behavior::kIsolated:
      return;
    case Behavior::kRemoved:
      for (const Piece& p : pieces) {
        if (!p.is_match) out.push_back(p);
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (const Piece& p : pieces) {
        if (p.is_match && !previous_match && !out.empty()) out.back().end = p.end;
        else out.push_back(p);
        previous_match = p.is_match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) out.back().begin = it->begin;
        else out.push_back(*it);
        previous_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    case Behavior::kContiguous:
      for (const Piece& p : pieces) {
        if (p.is_match == previous_match && !out.empty()) out.back().end = p.end;
        else out.push_back(p);
        previous_match = p.is_match;
      }
      break;
  }
  pieces = std::move(out);
}

}  // namespace

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out,
                         std::deque<std::string>& storage) const {
  std::vector<std::string_view> cur{text}, next;
  std::vector<Piece> pieces;
  for (const Step& step : steps_) {
    next.clear();
    for (std::string_view piece : cur) {
      if (piece.empty()) continue;
      if (step.byte_level && step.add_prefix_space && piece.front() != ' ') {
        std::string& prefixed = storage.emplace_back(1, ' ');
        prefixed.append(piece);
        piece = prefixed;
      }
      if (!step.regex) {
        next.push_back(piece);
        continue;
      }
      find_pieces(*step.regex, piece, pieces);
      if (!step.byte_level) apply_behavior(step.behavior, step.invert, pieces);
      for (const Piece& p : pieces) {
        if (p.end > p.begin) next.push_back(piece.substr(p.begin, p.end - p.begin));
      }
    }
    std::swap(cur, next);
  }
  out.insert(out.end(), cur.begin(), cur.end());
}

}  // namespace dtune
