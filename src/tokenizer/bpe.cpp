// Byte-level BPE as `tokenizers` runs it (models/bpe/word.rs merge_all): a heap of candidate
// merges ordered by (rank, position); stale entries are skipped when popped.
#include "dtune/tokenizer/bpe.h"

#include <array>
#include <atomic>
#include <nlohmann/json.hpp>
#include <queue>

#include "dtune/core/error.h"
#include "dtune/tokenizer/byte_level.h"

namespace dtune {

namespace {

// Word -> ids cache, one per thread and model so lookups take no lock. Words longer than
// kMaxWordBytes are not cached, and a cache stops growing at kMaxEntries.
constexpr std::size_t kMaxWordBytes = 64;
constexpr std::size_t kMaxEntries = 1 << 18;

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using WordCache = std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>;

// The calling thread's cache for model instance id (ids are never reused, so a cache of a
// destroyed model is simply never looked up again).
WordCache& thread_cache(uint64_t id) {
  thread_local uint64_t last_id = 0;
  thread_local WordCache* last = nullptr;
  if (last && last_id == id) return *last;
  thread_local std::unordered_map<uint64_t, WordCache> caches;
  last = &caches[id];
  last_id = id;
  return *last;
}

std::atomic<uint64_t> next_instance_id{1};

}  // namespace

Bpe::Bpe() : instance_id_(next_instance_id++) {}
Bpe::Bpe(Bpe&&) noexcept = default;
Bpe& Bpe::operator=(Bpe&&) noexcept = default;
Bpe::~Bpe() = default;

namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

}  // namespace

Bpe Bpe::from_json(const nlohmann::json& m, const std::string& file) {
  DTUNE_CHECK(m.is_object(), file, ": \"model\" must be an object");
  const std::string type = m.contains("type") && m["type"].is_string() ? m["type"].get<std::string>()
                           : m.contains("merges")                       ? std::string("BPE")
                                                                        : std::string("(missing)");
  DTUNE_CHECK(type == "BPE", file, ": model.type \"", type,
              "\" is not supported: dtune supports byte-level BPE only (not WordPiece, Unigram or WordLevel)");
  auto str_field = [&](const char* key) -> std::string {
    if (!m.contains(key) || m[key].is_null()) return "";
    DTUNE_CHECK(m[key].is_string(), file, ": model.", key, " must be a string or null");
    return m[key].get<std::string>();
  };
  DTUNE_CHECK(str_field("continuing_subword_prefix").empty() && str_field("end_of_word_suffix").empty(), file,
              ": model.continuing_subword_prefix / end_of_word_suffix are not supported (not a byte-level BPE)");
  DTUNE_CHECK(!m.contains("dropout") || m["dropout"].is_null() || (m["dropout"].is_number() && m["dropout"].get<double>() == 0.0),
              file, ": model.dropout is set; BPE dropout (random merges) is not supported for encoding");
  Bpe bpe;
  bpe.fuse_unk_ = m.value("fuse_unk", false);
  bpe.ignore_merges_ = m.contains("ignore_merges") && m["ignore_merges"].is_boolean() && m["ignore_merges"].get<bool>();

  DTUNE_CHECK(m.contains("vocab") && m["vocab"].is_object(), file, ": model.vocab must be an object {token: id}");
  const auto& vocab = m["vocab"];
  bpe.vocab_.reserve(vocab.size() * 2);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    DTUNE_CHECK(it.value().is_number_integer() && it.value().get<int64_t>() >= 0 &&
                    it.value().get<int64_t>() < (int64_t(1) << 30),
                file, ": model.vocab[\"", it.key(), "\"] must be an id in [0, 2^30)");
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    bpe.vocab_[it.key()] = id;
    if (static_cast<std::size_t>(id) >= bpe.id_to_token_.size()) {
      bpe.id_to_token_.resize(id + 1);
      bpe.has_id_.resize(id + 1, false);
    }
    bpe.id_to_token_[id] = it.key();
    bpe.has_id_[id] = true;
    if (auto bytes = byte_level::decode(it.key())) bpe.bytes_vocab_.emplace(std::move(*bytes), id);
  }
  for (int b = 0; b < 256; ++b) {
    auto it = bpe.vocab_.find(byte_level::char_of_byte(static_cast<unsigned char>(b)));
    bpe.byte_id_[b] = it == bpe.vocab_.end() ? -1 : it->second;
  }
  const std::string unk = str_field("unk_token");
  if (!unk.empty()) {
    auto it = bpe.vocab_.find(unk);
    DTUNE_CHECK(it != bpe.vocab_.end(), file, ": model.unk_token \"", unk, "\" is not in model.vocab");
    bpe.unk_id_ = it->second;
  }

  DTUNE_CHECK(m.contains("merges") && m["merges"].is_array(), file, ": model.merges must be an array");
  const auto& merges = m["merges"];
  bpe.merges_.reserve(merges.size() * 2);
  std::string joined;  // a + b, reused
  for (std::size_t r = 0; r < merges.size(); ++r) {
    const auto& e = merges[r];
    std::string_view a, b;
    if (e.is_string()) {  // "a b"
      const std::string& s = e.get_ref<const std::string&>();
      const std::size_t sp = s.find(' ');
      DTUNE_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, file, ": model.merges[", r,
                  "] = \"", s, "\" must be two tokens separated by one space");
      a = std::string_view(s).substr(0, sp);
      b = std::string_view(s).substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {  // ["a", "b"]
      a = e[0].get_ref<const std::string&>();
      b = e[1].get_ref<const std::string&>();
    } else {
      throw Error(str(file, ": model.merges[", r, "] must be \"a b\" or [\"a\", \"b\"]"));
    }
    joined.assign(a);
    joined.append(b);
    auto ia = bpe.vocab_.find(a), ib = bpe.vocab_.find(b), inew = bpe.vocab_.find(std::string_view(joined));
    DTUNE_CHECK(ia != bpe.vocab_.end() && ib != bpe.vocab_.end() && inew != bpe.vocab_.end(), file,
                ": model.merges[", r, "] (\"", a, "\", \"", b, "\") uses a token missing from model.vocab");
    bpe.merges_[pair_key(ia->second, ib->second)] = Merge{static_cast<int32_t>(r), inew->second};
  }
  return bpe;
}

const std::string* Bpe::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

std::optional<int32_t> Bpe::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const Bpe::Merge* Bpe::find_merge(int32_t left, int32_t right) const {
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  const bool cacheable = word.size() <= kMaxWordBytes;
  WordCache* cache = cacheable ? &thread_cache(instance_id_) : nullptr;
  if (cache) {
    auto it = cache->find(word);
    if (it != cache->end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t first = out.size();
  if (ignore_merges_) {
    auto it = bytes_vocab_.find(word);
    if (it != bytes_vocab_.end()) out.push_back(it->second);
  }
  if (out.size() == first) merge_word(word, out);
  if (cache && cache->size() < kMaxEntries) {
    cache->emplace(std::string(word), std::vector<int32_t>(out.begin() + first, out.end()));
  }
}

void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // linked list over surviving symbols; -1 at the ends
    bool alive;
  };
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  bool last_unk = false;
  for (char c : word) {
    const int32_t id = byte_id_[static_cast<unsigned char>(c)];
    if (id < 0) {  // a byte whose character is not in the vocab: unk, or dropped (tokenizers)
      if (!unk_id_) continue;
      if (fuse_unk_ && last_unk) continue;
      last_unk = true;
      sym.push_back({*unk_id_, 0, 0, true});
      continue;
    }
    last_unk = false;
    sym.push_back({id, 0, 0, true});
  }
  const auto n = static_cast<int32_t>(sym.size());
  for (int32_t i = 0; i < n; ++i) {
    sym[i].prev = i - 1;
    sym[i].next = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank, pos, new_id;
    bool operator<(const Cand& o) const {  // max-heap: lowest rank, then leftmost, on top
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Cand> queue;
  for (int32_t i = 0; i + 1 < n; ++i) {
    if (const Merge* m = find_merge(sym[i].id, sym[i + 1].id)) queue.push({m->rank, i, m->new_id});
  }
  while (!queue.empty()) {
    const Cand top = queue.top();
    queue.pop();
    Symbol& s = sym[top.pos];
    if (!s.alive || s.next < 0) continue;
    const int32_t right = s.next;
    const Merge* m = find_merge(s.id, sym[right].id);
    if (!m || m->new_id != top.new_id) continue;  // stale entry
    s.id = top.new_id;
    sym[right].alive = false;
    s.next = sym[right].next;
    if (s.next >= 0) sym[s.next].prev = top.pos;
    if (s.prev >= 0) {
      if (const Merge* pm = find_merge(sym[s.prev].id, s.id)) queue.push({pm->rank, s.prev, pm->new_id});
    }
    if (s.next >= 0) {
      if (const Merge* nm = find_merge(s.id, sym[s.next].id)) queue.push({nm->rank, top.pos, nm->new_id});
    }
  }
  for (const Symbol& s : sym) {
    if (s.alive) out.push_back(s.id);
  }
}

}  // namespace dtune
