// The tokenizer.json "post_processor" for a single sequence, reduced to the ids it puts
// before and after the encoded text (TemplateProcessing, ByteLevel, Roberta/Bert, Sequence).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace dtune {

struct PostProcessor {
  std::vector<int32_t> prefix;  // ids before the text when add_special_tokens, e.g. {BOS}
  std::vector<int32_t> suffix;  // ids after it

  // j: the "post_processor" value (null = none). Throws dtune::Error naming file and the JSON
  // path of an unsupported or malformed component.
  static PostProcessor from_json(const nlohmann::json& j, const std::string& file);
};

}  // namespace dtune
