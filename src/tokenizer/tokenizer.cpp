// Tokenizer: loads tokenizer.json (+ tokenizer_config.json) and runs the `tokenizers` pipeline:
// added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor; decode via ByteLevel.
#include "dtune/tokenizer/tokenizer.h"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/tokenizer/added_tokens.h"
#include "dtune/tokenizer/bpe.h"
#include "dtune/tokenizer/byte_level.h"
#include "dtune/tokenizer/normalizer.h"
#include "dtune/tokenizer/post_processor.h"
#include "dtune/tokenizer/pre_tokenizer.h"
#include "dtune/core/sha256.h"
#include "dtune/tokenizer/utf8.h"

namespace dtune {

struct Tokenizer::Impl {
  std::string path;
  std::string sha256;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  Bpe bpe;
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, std::size_t> added_by_id;  // id -> index into added
  std::unordered_map<std::string, int32_t> added_by_content;
  AddedTokenMatcher raw_matcher;         // tokens with normalized=false, searched in raw text
  AddedTokenMatcher normalized_matcher;  // tokens with normalized=true, in normalized text
  PostProcessor post;
  bool byte_level_decoder = true;  // false: no decoder, tokens joined by " " as `tokenizers` does
  int32_t vocab_size = 0;
  std::optional<int32_t> bos, eos, pad;

  void encode_normalized(std::string_view text, std::vector<int32_t>& ids) const;
  void encode_plain(std::string_view text, std::vector<int32_t>& ids) const;
};

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DTUNE_CHECK(in, "cannot open tokenizer file '", path, "' (pass --tokenizer a tokenizer.json or the folder holding it)");
  std::ostringstream ss;
  ss << in.rdbuf();
  DTUNE_CHECK(!in.bad(), "cannot read tokenizer file '", path, "'");
  return ss.str();
}

nlohmann::json parse_json(const std::string& text, const std::string& path) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(str(path, ": malformed JSON: ", e.what()));
  }
}

// Accepts the decoders `tokenizers` uses for byte-level BPE; returns false for "no decoder".
bool check_decoder(const nlohmann::json& j, const std::string& file, const std::string& where) {
  if (j.is_null()) return false;
  DTUNE_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(), file, ": ", where,
              " must be null or an object with a \"type\"");
  const std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return true;
  if (type == "Sequence" && j.contains("decoders") && j["decoders"].is_array() && j["decoders"].size() == 1) {
    return check_decoder(j["decoders"][0], file, where + ".decoders[0]");
  }
  throw Error(str(file, ": ", where, ".type \"", type,
                  "\" is not supported (dtune decodes byte-level BPE: ByteLevel, or a Sequence of it)"));
}

std::vector<AddedToken> parse_added_tokens(const nlohmann::json& j, const std::string& file) {
  std::vector<AddedToken> out;
  if (j.is_null()) return out;
  DTUNE_CHECK(j.is_array(), file, ": added_tokens must be an array");
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& t = j[i];
    const std::string at = str(file, ": added_tokens[", i, "]");
    DTUNE_CHECK(t.is_object() && t.contains("content") && t["content"].is_string() && t.contains("id") &&
                    t["id"].is_number_integer() && t["id"].get<int64_t>() >= 0 &&
                    t["id"].get<int64_t>() < (int64_t(1) << 30),
                at, " must have a string \"content\" and an integer \"id\" in [0, 2^30)");
    auto flag = [&](const char* key, bool dflt) {
      return t.contains(key) && t[key].is_boolean() ? t[key].get<bool>() : dflt;
    };
    AddedToken a;
    a.content = t["content"].get<std::string>();
    a.id = static_cast<int32_t>(t["id"].get<int64_t>());
    a.special = flag("special", false);
    a.single_word = flag("single_word", false);
    a.lstrip = flag("lstrip", false);
    a.rstrip = flag("rstrip", false);
    a.normalized = flag("normalized", !a.special);
    out.push_back(std::move(a));
  }
  return out;
}

// bos_token / eos_token / pad_token of tokenizer_config.json: a string, {"content": ...} or null.
std::optional<int32_t> config_token(const nlohmann::json& cfg, const char* key, const Tokenizer& tok,
                                    const std::string& file) {
  if (!cfg.contains(key) || cfg[key].is_null()) return std::nullopt;
  const auto& v = cfg[key];
  std::string content;
  if (v.is_string()) content = v.get<std::string>();
  else if (v.is_object() && v.contains("content") && v["content"].is_string()) content = v["content"].get<std::string>();
  else throw Error(str(file, ": ", key, " must be a string, {\"content\": ...} or null"));
  auto id = tok.token_to_id(content);
  if (!id) log::warn(str(file, ": ", key, " \"", content, "\" is not a token of tokenizer.json; ignoring it"));
  return id;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::string file = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) file = (fs::path(path) / "tokenizer.json").string();
  const std::string bytes = read_file(file);
  const nlohmann::json j = parse_json(bytes, file);
  DTUNE_CHECK(j.is_object(), file, ": the top level must be a JSON object");
  DTUNE_CHECK(j.contains("model"), file, ": no \"model\" section; is this a Hugging Face tokenizer.json?");
  const nlohmann::json null_json;
  auto section = [&](const char* key) -> const nlohmann::json& { return j.contains(key) ? j[key] : null_json; };

  Bpe bpe = Bpe::from_json(j["model"], file);  // first: an unsupported model type is the main error
  auto impl = std::unique_ptr<Impl>(new Impl{
      file, sha256_hex(bytes), Normalizer::from_json(section("normalizer"), file),
      PreTokenizer::from_json(section("pre_tokenizer"), file), std::move(bpe),
      {}, {}, {}, {}, {},
      PostProcessor::from_json(section("post_processor"), file),
      check_decoder(section("decoder"), file, "decoder"), 0, {}, {}, {}});
  Impl& m = *impl;
  // The declared ids are checked against the rules `tokenizers` assigns them by; a difference
  // is warned about, never silent.
  std::vector<std::string> warnings;
  m.added = assign_added_token_ids(
      parse_added_tokens(section("added_tokens"), file), m.bpe.vocab_entries(),
      [&](const std::string& content) { return m.bpe.token_to_id(content); }, file, warnings);
  for (const std::string& w : warnings) log::warn(w);
  m.vocab_size = m.bpe.max_id() + 1;
  std::vector<std::string> raw_patterns, normalized_patterns;
  for (std::size_t i = 0; i < m.added.size(); ++i) {
    const AddedToken& a = m.added[i];
    m.added_by_id.emplace(a.id, i);
    m.added_by_content.emplace(a.content, a.id);
    m.vocab_size = std::max(m.vocab_size, a.id + 1);
    raw_patterns.push_back(a.normalized ? "" : a.content);
    normalized_patterns.push_back(a.normalized ? m.normalizer.normalize(a.content) : "");
  }
  m.raw_matcher = AddedTokenMatcher(m.added, raw_patterns);
  m.normalized_matcher = AddedTokenMatcher(m.added, normalized_patterns);
  for (int32_t id : m.post.prefix) DTUNE_CHECK(id < m.vocab_size, file, ": post_processor uses id ", id, " beyond the vocab");
  for (int32_t id : m.post.suffix) DTUNE_CHECK(id < m.vocab_size, file, ": post_processor uses id ", id, " beyond the vocab");

  Tokenizer tok(std::move(impl));
  const fs::path cfg_path = fs::path(file).parent_path() / "tokenizer_config.json";
  if (fs::exists(cfg_path, ec)) {
    const std::string cfg_file = cfg_path.string();
    const nlohmann::json cfg = parse_json(read_file(cfg_file), cfg_file);
    DTUNE_CHECK(cfg.is_object(), cfg_file, ": the top level must be a JSON object");
    tok.impl_->bos = config_token(cfg, "bos_token", tok, cfg_file);
    tok.impl_->eos = config_token(cfg, "eos_token", tok, cfg_file);
    tok.impl_->pad = config_token(cfg, "pad_token", tok, cfg_file);
  }
  return tok;
}

void Tokenizer::Impl::encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
  std::vector<std::string_view> words;
  std::deque<std::string> storage;
  pre_tokenizer.split(text, words, storage);
  for (std::string_view w : words) bpe.encode_word(w, ids);
}

void Tokenizer::Impl::encode_normalized(std::string_view text, std::vector<int32_t>& ids) const {
  if (normalized_matcher.empty()) {
    encode_plain(text, ids);
    return;
  }
  std::vector<AddedTokenMatcher::Segment> segments;
  normalized_matcher.split(text, segments);
  for (const auto& s : segments) {
    if (s.id >= 0) ids.push_back(s.id);
    else if (s.end > s.begin) encode_plain(text.substr(s.begin, s.end - s.begin), ids);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const std::size_t bad = utf8::find_invalid(text);
  DTUNE_CHECK(bad == utf8::kValid, "text to tokenize is not valid UTF-8 (byte offset ", bad, ")");
  const Impl& m = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids.insert(ids.end(), m.post.prefix.begin(), m.post.prefix.end());
  std::vector<AddedTokenMatcher::Segment> segments;
  m.raw_matcher.split(text, segments);
  for (const auto& s : segments) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    if (s.end == s.begin) continue;
    const std::string_view piece = text.substr(s.begin, s.end - s.begin);
    if (m.normalizer.is_identity()) {
      m.encode_normalized(piece, ids);
    } else {
      const std::string normalized = m.normalizer.normalize(piece);
      m.encode_normalized(normalized, ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), m.post.suffix.begin(), m.post.suffix.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) {
    const std::string* token = nullptr;
    auto it = m.added_by_id.find(id);
    if (it != m.added_by_id.end()) {
      const AddedToken& a = m.added[it->second];
      if (skip_special_tokens && a.special) continue;
      token = &a.content;
    } else {
      token = m.bpe.id_to_token(id);
      if (!token) continue;  // unknown ids are skipped, as in `tokenizers`
      if (skip_special_tokens) {
        auto sp = m.added_by_content.find(*token);
        if (sp != m.added_by_content.end() && m.added[m.added_by_id.at(sp->second)].special) continue;
      }
    }
    if (!m.byte_level_decoder) {
      if (!first) bytes += ' ';
      bytes += *token;
    } else if (auto raw = byte_level::decode(*token)) {
      bytes += *raw;
    } else {
      bytes += *token;
    }
    first = false;
  }
  return utf8::to_valid_lossy(bytes);
}

std::string Tokenizer::token_bytes(int32_t id) const {
  const Impl& m = *impl_;
  auto it = m.added_by_id.find(id);
  if (it != m.added_by_id.end()) return m.added[it->second].content;
  const std::string* token = m.bpe.id_to_token(id);
  if (!token) return "";
  if (!m.byte_level_decoder) return *token;
  auto raw = byte_level::decode(*token);
  return raw ? *raw : *token;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  auto it = impl_->added_by_content.find(std::string(token));
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->bpe.token_to_id(token);
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }
std::optional<int32_t> Tokenizer::pad_id() const { return impl_->pad; }
const std::string& Tokenizer::sha256() const { return impl_->sha256; }
const std::string& Tokenizer::path() const { return impl_->path; }

}  // namespace dtune
