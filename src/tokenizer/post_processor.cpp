// Post-processors as applied by `tokenizers` to one sequence when add_special_tokens is true.
#include "dtune/tokenizer/post_processor.h"

#include <nlohmann/json.hpp>

#include "dtune/core/error.h"

namespace dtune {
namespace {

// Appends the prefix/suffix of component j, which wraps what the previous components made.
void add_component(const nlohmann::json& j, const std::string& file, const std::string& where, PostProcessor& pp) {
  if (j.is_null()) return;
  DTUNE_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(), file, ": ", where,
              " must be null or an object with a \"type\"");
  const std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return;  // only adjusts offsets
  if (type == "Sequence") {
    DTUNE_CHECK(j.contains("processors") && j["processors"].is_array(), file, ": ", where,
                ".processors must be an array");
    for (std::size_t i = 0; i < j["processors"].size(); ++i) {
      add_component(j["processors"][i], file, str(where, ".processors[", i, "]"), pp);
    }
    return;
  }
  std::vector<int32_t> before, after;
  if (type == "TemplateProcessing") {
    DTUNE_CHECK(j.contains("single") && j["single"].is_array(), file, ": ", where, ".single must be an array");
    const nlohmann::json empty = nlohmann::json::object();
    const auto& specials = j.contains("special_tokens") && j["special_tokens"].is_object() ? j["special_tokens"] : empty;
    bool seen_text = false;
    for (std::size_t i = 0; i < j["single"].size(); ++i) {
      const auto& piece = j["single"][i];
      const std::string at = str(file, ": ", where, ".single[", i, "]");
      if (piece.contains("Sequence")) {
        DTUNE_CHECK(!seen_text, at, ": the single template may hold only one Sequence");
        seen_text = true;
        continue;
      }
      DTUNE_CHECK(piece.contains("SpecialToken") && piece["SpecialToken"].contains("id") &&
                      piece["SpecialToken"]["id"].is_string(),
                  at, " must be {\"Sequence\": ...} or {\"SpecialToken\": {\"id\": ...}}");
      const std::string name = piece["SpecialToken"]["id"].get<std::string>();
      DTUNE_CHECK(specials.contains(name) && specials[name].contains("ids") && specials[name]["ids"].is_array(),
                  at, ": special token \"", name, "\" is missing from ", where, ".special_tokens");
      for (const auto& id : specials[name]["ids"]) {
        DTUNE_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (int64_t(1) << 30), at,
                    ": special token \"", name, "\" has an invalid id");
        (seen_text ? after : before).push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
    }
    DTUNE_CHECK(seen_text, file, ": ", where, ".single has no {\"Sequence\": ...} entry for the text");
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    for (const char* key : {"cls", "sep"}) {
      DTUNE_CHECK(j.contains(key) && j[key].is_array() && j[key].size() == 2 && j[key][1].is_number_integer(), file,
                  ": ", where, ".", key, " must be [token, id]");
    }
    before.push_back(j["cls"][1].get<int32_t>());
    after.push_back(j["sep"][1].get<int32_t>());
  } else {
    throw Error(str(file, ": ", where, ".type \"", type,
                    "\" is not supported (dtune supports TemplateProcessing, ByteLevel, RobertaProcessing, "
                    "BertProcessing and Sequence)"));
  }
  before.insert(before.end(), pp.prefix.begin(), pp.prefix.end());
  pp.prefix = std::move(before);
  pp.suffix.insert(pp.suffix.end(), after.begin(), after.end());
}

}  // namespace

PostProcessor PostProcessor::from_json(const nlohmann::json& j, const std::string& file) {
  PostProcessor pp;
  add_component(j, file, "post_processor", pp);
  return pp;
}

}  // namespace dtune
