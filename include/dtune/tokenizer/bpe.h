// The byte-level BPE model of tokenizer.json: vocab, ranked merges, ignore_merges, and a
// word -> ids cache. Words arrive as raw bytes; byte b starts as the id of its byte-level
// character (see byte_level.h), then merges apply lowest rank first, leftmost first.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dtune {

class Bpe {
 public:
  // model: the "model" value of tokenizer.json (type BPE). Throws dtune::Error naming file
  // and field when the model is not a supported byte-level BPE or is malformed.
  static Bpe from_json(const nlohmann::json& model, const std::string& file);

  // Appends the ids of one pre-token (raw bytes). Thread-safe.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  // The token spelled in the byte-level alphabet, or nullptr for an id outside the vocab.
  const std::string* id_to_token(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }
  // Number of vocabulary entries (`tokenizers`' BPE get_vocab_size: vocab.len(), gaps not counted).
  int32_t vocab_entries() const { return static_cast<int32_t>(vocab_.size()); }

  Bpe(Bpe&&) noexcept;
  Bpe& operator=(Bpe&&) noexcept;
  ~Bpe();

 private:
  Bpe();
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  // Hash for heterogeneous lookup by string_view (no temporary std::string per lookup).
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using StringMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

  StringMap vocab_;        // byte-level spelling -> id
  StringMap bytes_vocab_;  // raw bytes -> id (ignore_merges)
  std::vector<std::string> id_to_token_;                  // "" for ids missing from the vocab
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  int32_t byte_id_[256];                        // id of each byte's alphabet character, or -1
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  uint64_t instance_id_;  // keys this model's per-thread word cache (bpe.cpp)
};

}  // namespace dtune
