// copy_tokenizer_files: the tokenizer files of a folder copied into another (see tokenizer_files.h).
#include "dtune/io/tokenizer_files.h"

#include <filesystem>

#include "dtune/io/staging_dir.h"

namespace dtune {
namespace {

namespace fs = std::filesystem;

// What AutoTokenizer.from_pretrained reads (fast and slow tokenizers, chat templates).
constexpr const char* kTokenizerFiles[] = {"tokenizer.json",    "tokenizer_config.json", "special_tokens_map.json",
                                           "tokenizer.model",   "vocab.json",            "merges.txt",
                                           "added_tokens.json", "chat_template.jinja",   "chat_template.json"};

}  // namespace

int copy_tokenizer_files(const std::string& source, const std::string& dir) {
  const bool is_file = fs::is_regular_file(source);
  const fs::path folder = is_file ? fs::path(source).parent_path() : fs::path(source);
  int copied = 0;
  for (const char* name : kTokenizerFiles) {
    fs::path src = folder / name;
    if (is_file && std::string(name) == "tokenizer.json") src = source;
    if (!fs::is_regular_file(src)) continue;
    copy_file_checked(src.string(), (fs::path(dir) / name).string());
    ++copied;
  }
  return copied;
}

}  // namespace dtune
