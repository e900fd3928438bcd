// The pretokenized HDF5 file: names, version and root attributes shared by the writer
// (dtune pretokenize) and the reader (Hdf5Dataset). Layout for h5py users: docs/DATA_FORMAT.md.
#pragma once

#include <cstdint>
#include <string>

#include "dtune/core/sha256.h"

namespace dtune {

// Bump when the layout changes; the reader reads kOldestDataFormatVersion..kDataFormatVersion.
// 2: adds loss_mask (conversational rows train on several assistant spans, not one suffix).
constexpr int64_t kDataFormatVersion = 2;
constexpr int64_t kOldestDataFormatVersion = 1;
// Groups: "/train", "/eval". Datasets in each group:
//   tokens          int32 (n_tokens,)    all rows' ids back to back; chunked, shuffle + gzip
//                                        + Fletcher-32 (every dataset has the same filters)
//   offsets         int64 (n_rows + 1,)  row i is tokens[offsets[i]:offsets[i+1]]; offsets[0]=0
//   prompt_lengths  int32 (n_rows,)      leading tokens of row i that take no loss (version 2:
//                                        the index of its first loss_mask = 1 token)
//   loss_mask       int8  (n_tokens,)    version >= 2: 1 where the loss is taken on the token,
//                                        0 elsewhere (version 1: 1 from prompt_lengths[i] on)
//   source_ids      int32 (n_rows,)      version >= 2: index of row i's input in the `sources`
//                                        attribute (--input order); version 1: all 0
constexpr const char* kTrainGroup = "train";
constexpr const char* kEvalGroup = "eval";
constexpr const char* kTokensName = "tokens";
constexpr const char* kOffsetsName = "offsets";
constexpr const char* kPromptLengthsName = "prompt_lengths";
constexpr const char* kLossMaskName = "loss_mask";
constexpr const char* kSourceIdsName = "source_ids";

// Root attributes of a pretokenized file. Ids are -1 when the tokenizer has no such token.
struct PretokenizedInfo {
  int64_t format_version = kDataFormatVersion;
  std::string dtune_version;     // DTUNE_VERSION of the writer
  std::string tokenizer_path;    // tokenizer.json as given to pretokenize
  std::string tokenizer_sha256;  // hex sha256 of the tokenizer.json bytes
  int64_t vocab_size = 0;        // every id is in [0, vocab_size)
  int64_t bos_id = -1;
  int64_t eos_id = -1;
  int64_t pad_id = -1;
  std::string template_name;     // preset name or template file path
  std::string template_text;     // the template, {@completion} marker included
  std::string add_bos;           // "auto" | "yes" | "no"
  std::string source_path;       // --input as given; several inputs: their paths joined by "; "
  std::string source_sha256;     // hex sha256 of the input file bytes; several inputs: of their
                                 // "path=sha256\n" lines
  // Version >= 2 with several inputs: a JSON array, one object per --input in order: path,
  // sha256, weight, rows (good rows read), skipped, train_rows, eval_rows, tokens. "" otherwise.
  std::string sources;
  int64_t num_train_rows = 0;
  int64_t num_eval_rows = 0;
  int64_t num_skipped_rows = 0;    // bad input rows skipped under --skip-bad-rows
  int64_t num_truncated_rows = 0;  // rows cut to max_length (kept)
  int64_t num_dropped_rows = 0;    // rows whose prompt alone filled max_length (no loss tokens)
  int64_t max_length = 0;          // tokens per row at most, BOS and EOS included
  int64_t seed = 0;                // train/eval split seed
  double eval_fraction = 0;        // probability that a row goes to /eval
};

// Root attribute holding string_attributes_sha256(info). HDF5 keeps variable-length string
// values in a global heap that has no checksum (numbers and the rest of the metadata have one),
// so the writer records this digest and the reader compares it; files written before it
// existed have none and are read unchecked.
constexpr const char* kStringAttributesSha256 = "string_attributes_sha256";

// Hex sha256 of every string attribute as "name=<byte length>:value\n", in a fixed order.
inline std::string string_attributes_sha256(const PretokenizedInfo& info) {
  Sha256 h;
  const auto add = [&h](const char* name, const std::string& value) {
    h.update(std::string(name) + "=" + std::to_string(value.size()) + ":");
    h.update(value);
    h.update("\n");
  };
  add("dtune_version", info.dtune_version);
  add("tokenizer_path", info.tokenizer_path);
  add("tokenizer_sha256", info.tokenizer_sha256);
  add("template_name", info.template_name);
  add("template_text", info.template_text);
  add("add_bos", info.add_bos);
  add("source_path", info.source_path);
  add("source_sha256", info.source_sha256);
  if (!info.sources.empty()) add("sources", info.sources);  // absent before several inputs
  return h.hex_digest();
}

}  // namespace dtune
