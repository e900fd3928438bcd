// Prompt template parsing, presets and rendering; see include/dtune/data/prompt_template.h.
#include "dtune/data/prompt_template.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "dtune/core/error.h"

namespace dtune {
namespace {

constexpr std::string_view kCompletionMarker = "@completion";

struct Preset {
  const char* name;
  const char* text;
};

// recipe: the format of the medical-o1-reasoning-SFT fine-tuning recipe.
// r1-chat: the DeepSeek-R1 chat form; the BOS text is part of the template (so --add-bos auto
// does not add a second one when the tokenizer knows it as a special token).
constexpr Preset kPresets[] = {
    {"recipe",
     "Please reason step by step:\n\nQuestion: {Question}\n\nLet's solve this step by step:\n"
     "{@completion}{Complex_CoT}\n\nFinal Answer: {Response}"},
    {"r1-chat",
     "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c><\xef\xbd\x9cUser\xef\xbd\x9c>"
     "{Question}<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\n{@completion}{Complex_CoT}\n</think>\n\n"
     "{Response}"},
};

}  // namespace

PromptTemplate PromptTemplate::parse(std::string_view text, std::string name) {
  PromptTemplate t;
  t.text_ = std::string(text);
  t.name_ = std::move(name);
  bool in_completion = false;
  std::string literal;
  auto flush_literal = [&] {
    if (literal.empty()) return;
    Piece p;
    p.literal = std::move(literal);
    p.in_completion = in_completion;
    t.pieces_.push_back(std::move(p));
    literal.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '}') {
      DTUNE_CHECK(i + 1 < text.size() && text[i + 1] == '}', "template ", t.name_,
                  ": lone '}' at byte ", i, "; write '}}' for a literal brace");
      literal.push_back('}');
      ++i;
      continue;
    }
    if (c != '{') {
      literal.push_back(c);
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      literal.push_back('{');
      ++i;
      continue;
    }
    const size_t close = text.find_first_of("{}", i + 1);
    DTUNE_CHECK(close != std::string_view::npos && text[close] == '}', "template ", t.name_,
                ": '{' at byte ", i, " opens a field that is not closed with '}'; write '{{' for a ",
                "literal brace");
    const std::string_view field = text.substr(i + 1, close - i - 1);
    DTUNE_CHECK(!field.empty(), "template ", t.name_, ": empty field name '{}' at byte ", i);
    flush_literal();
    if (field == kCompletionMarker) {
      DTUNE_CHECK(!in_completion, "template ", t.name_, ": {@completion} appears twice (byte ", i,
                  "); it must mark exactly one place");
      in_completion = true;
    } else {
      DTUNE_CHECK(field[0] != '@', "template ", t.name_, ": unknown directive {", field,
                  "} at byte ", i, "; the only one is {@completion}");
      auto it = std::find(t.fields_.begin(), t.fields_.end(), field);
      Piece p;
      p.is_field = true;
      p.in_completion = in_completion;
      p.field = static_cast<size_t>(it - t.fields_.begin());
      if (it == t.fields_.end()) t.fields_.emplace_back(field);
      t.pieces_.push_back(std::move(p));
    }
    i = close;
  }
  flush_literal();
  DTUNE_CHECK(in_completion, "template ", t.name_,
              ": no {@completion} marker; put it where the completion (the text the loss is ",
              "taken on) starts, e.g. before the answer field");
  return t;
}

PromptTemplate PromptTemplate::preset(const std::string& name) {
  for (const Preset& p : kPresets) {
    if (name == p.name) return parse(p.text, name);
  }
  std::string names;
  for (const std::string& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error(str("--template: unknown preset '", name, "'; presets are: ", names,
                  " (or pass --template-file FILE)"));
}

std::vector<std::string> PromptTemplate::preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.emplace_back(p.name);
  return names;
}

PromptTemplate PromptTemplate::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DTUNE_CHECK(in.good(), "--template-file: cannot open ", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return parse(text, path);
}

void PromptTemplate::render(const std::vector<std::string>& values, std::string& prompt,
                            std::string& completion) const {
  DTUNE_CHECK(values.size() == fields_.size(), "internal: template ", name_, " needs ",
              fields_.size(), " field values, got ", values.size());
  prompt.clear();
  completion.clear();
  for (const Piece& p : pieces_) {
    std::string& out = p.in_completion ? completion : prompt;
    out += p.is_field ? values[p.field] : p.literal;
  }
}

}  // namespace dtune
