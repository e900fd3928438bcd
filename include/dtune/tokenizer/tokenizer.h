// A Hugging Face tokenizer.json (byte-level BPE) loaded natively; gives the ids that the
// PyPI `tokenizers` library gives. Thread-safe for concurrent encode()/decode() calls.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dtune {

class Tokenizer {
 public:
  // path: a tokenizer.json file, or the folder holding tokenizer.json (+ tokenizer_config.json).
  // Throws dtune::Error naming the file and what is unsupported or malformed.
  static Tokenizer load(const std::string& path);

  // Ids for text; add_special_tokens applies the post-processor (e.g. BOS for Llama 3).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // Text for ids; invalid UTF-8 becomes U+FFFD as in `tokenizers`.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;
  // The raw bytes id stands for in the (normalized) text it was encoded from: an added token's
  // content, or a vocabulary token's byte-level spelling decoded to bytes (may be part of a
  // UTF-8 character). With an identity normalizer, the token_bytes of encode(text, false)
  // concatenate to text exactly: chat_tokenizer uses this to map ids to byte offsets (what
  // `tokenizers` returns as offset_mapping). "" for an id that is not in the vocabulary.
  std::string token_bytes(int32_t id) const;

  int32_t vocab_size() const;  // highest id + 1, added tokens included
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<int32_t> bos_id() const;  // from tokenizer_config.json when present
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  const std::string& sha256() const;  // hex sha256 of the tokenizer.json bytes
  const std::string& path() const;    // the tokenizer.json that was loaded

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtune
