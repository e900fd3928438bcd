// Unicode normalization steps of tokenizer.json, run with utf8proc.
#include "dtune/tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"

namespace dtune {
namespace {

// True when form leaves text unchanged for sure: ASCII never changes, and code points below
// U+0300 (where combining marks begin) are NFC-stable.
bool is_stable(std::string_view text, bool nfc) {
  const unsigned char limit = nfc ? 0xCC : 0x80;  // 0xCC 0x80 is U+0300
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= limit) return false;
  }
  return true;
}

}  // namespace

Normalizer Normalizer::from_json(const nlohmann::json& j, const std::string& file) {
  Normalizer n;
  n.add_from_json(j, file, "normalizer");
  return n;
}

void Normalizer::add_from_json(const nlohmann::json& j, const std::string& file,
                               const std::string& where) {
  if (j.is_null()) return;
  DTUNE_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(), file, ": ", where,
              " must be null or an object with a \"type\"");
  const std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    DTUNE_CHECK(j.contains("normalizers") && j["normalizers"].is_array(), file, ": ", where,
                ".normalizers must be an array");
    for (std::size_t i = 0; i < j["normalizers"].size(); ++i) {
      add_from_json(j["normalizers"][i], file, str(where, ".normalizers[", i, "]"));
    }
  } else if (type == "NFC") {
    steps_.push_back(Form::kNFC);
  } else if (type == "NFD") {
    steps_.push_back(Form::kNFD);
  } else if (type == "NFKC") {
    steps_.push_back(Form::kNFKC);
  } else if (type == "NFKD") {
    steps_.push_back(Form::kNFKD);
  } else {
    throw Error(str(file, ": ", where, ".type \"", type,
                    "\" is not supported (dtune supports NFC, NFD, NFKC, NFKD and Sequence)"));
  }
}

std::string Normalizer::normalize(std::string_view text) const {
  std::string cur(text);
  for (Form f : steps_) {
    if (is_stable(cur, f == Form::kNFC)) continue;
    int options = UTF8PROC_STABLE;
    if (f == Form::kNFC || f == Form::kNFKC) options |= UTF8PROC_COMPOSE;
    if (f == Form::kNFD || f == Form::kNFKD) options |= UTF8PROC_DECOMPOSE;
    if (f == Form::kNFKC || f == Form::kNFKD) options |= UTF8PROC_COMPAT;
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(cur.data()),
                     static_cast<utf8proc_ssize_t>(cur.size()), &out, static_cast<utf8proc_option_t>(options));
    DTUNE_CHECK(n >= 0, "Unicode normalization failed: ", utf8proc_errmsg(n));
    cur.assign(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
    std::free(out);
  }
  return cur;
}

}  // namespace dtune
