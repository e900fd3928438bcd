// Prompt templates: text with named row fields, split into a prompt part (no loss) and a
// completion part (the loss is taken on its tokens).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dtune {

// Syntax (presets and --template-file files alike):
//   {Name}          the row's field "Name" (any characters but braces; must be non-empty)
//   {{  }}          a literal '{' / '}'
//   {@completion}   marks where the completion starts; exactly once. Everything before it is
//                   the prompt, everything after it the completion.
// Any other '{...' or a lone '}' is an error naming the byte offset. Field names are whatever
// the template names: a dataset with fields "instruction"/"output" just uses {instruction}.
class PromptTemplate {
 public:
  // Parses text; name is for messages and the HDF5 attribute ("recipe", or the file path).
  // Throws dtune::Error on a syntax error or a missing/duplicate {@completion} marker.
  static PromptTemplate parse(std::string_view text, std::string name);
  // A named preset: "recipe" or "r1-chat"; throws dtune::Error listing the presets otherwise.
  static PromptTemplate preset(const std::string& name);
  // A template file: its bytes verbatim, except that one final "\n" (what editors add) is
  // dropped; end the file with a blank line to keep a trailing newline in the completion.
  static PromptTemplate load_file(const std::string& path);
  static std::vector<std::string> preset_names();

  // Distinct field names in first-use order; RowReader asks rows for exactly these.
  const std::vector<std::string>& fields() const { return fields_; }
  const std::string& text() const { return text_; }
  const std::string& name() const { return name_; }

  // values[i] is the value of fields()[i]. Output: prompt and completion texts whose
  // concatenation is the formatted row.
  void render(const std::vector<std::string>& values, std::string& prompt,
              std::string& completion) const;

 private:
  struct Piece {
    bool is_field = false;
    bool in_completion = false;
    std::string literal;  // when !is_field
    size_t field = 0;     // index into fields_ when is_field
  };

  std::string text_;
  std::string name_;
  std::vector<std::string> fields_;
  std::vector<Piece> pieces_;
};

}  // namespace dtune
