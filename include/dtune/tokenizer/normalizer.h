// The tokenizer.json "normalizer": none, NFC/NFD/NFKC/NFKD (utf8proc), or a Sequence of those.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace dtune {

class Normalizer {
 public:
  // j: the "normalizer" value (null = none). file names tokenizer.json in error messages.
  static Normalizer from_json(const nlohmann::json& j, const std::string& file);

  bool is_identity() const { return steps_.empty(); }
  // REQUIRES: text is valid UTF-8.
  std::string normalize(std::string_view text) const;

 private:
  enum class Form { kNFC, kNFD, kNFKC, kNFKD };
  void add_from_json(const nlohmann::json& j, const std::string& file, const std::string& where);
  std::vector<Form> steps_;
};

}  // namespace dtune
