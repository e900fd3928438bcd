// Writes a pretokenized HDF5 file (layout in hdf5_format.h) by appending rows; the file
// appears at its final path only when finish() succeeds.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "dtune/data/hdf5_format.h"

namespace dtune {

// Crash-safety contract: data goes to "<path>.tmp-<pid>", renamed to <path> by finish().
// Integrity: every dataset carries the Fletcher-32 filter and the file uses HDF5's 1.10 format
// (checksummed metadata), plus the string_attributes_sha256 root attribute, so a changed byte is
// reported by Hdf5Dataset instead of read as other ids (docs/DATA_FORMAT.md, "Corruption").
// If finish() is never reached (an exception, a bad row), the destructor removes the temp
// file and <path> is untouched. Not thread-safe: one writer thread.
class Hdf5Writer {
 public:
  // Throws dtune::Error when the temp file cannot be created (names the folder).
  explicit Hdf5Writer(const std::string& path);
  ~Hdf5Writer();
  Hdf5Writer(const Hdf5Writer&) = delete;
  Hdf5Writer& operator=(const Hdf5Writer&) = delete;

  // Appends one row to /train (eval=false) or /eval. ids are int32 token ids; prompt_length
  // must be in [0, ids.size()]. loss_mask: one 0/1 per id (1 = the loss is taken on it), or
  // empty for "every id from prompt_length on"; with a mask, prompt_length must be the index
  // of its first 1 (ids.size() when none).
  // source: index of the row's input (InputSource order), >= 0.
  void append(bool eval, std::span<const int32_t> ids, int32_t prompt_length,
              std::span<const int8_t> loss_mask = {}, int32_t source = 0);
  int64_t num_rows(bool eval) const;
  int64_t num_tokens(bool eval) const;

  // Flushes, writes info as root attributes (row counts taken from what was appended), closes,
  // and publishes the file durably (publish_file: fsync, rename onto the final path, fsync the
  // folder). Throws dtune::Error naming the path when any step fails; the destructor then
  // removes the temp file and the final path is untouched.
  void finish(PretokenizedInfo info);
  const std::string& temp_path() const { return temp_path_; }

  // Elements per tokens chunk: 64 Ki ids = 256 KiB, so a random row read decompresses little.
  static constexpr int64_t kTokenChunk = 1 << 16;

 private:
  struct Split;
  std::string path_;
  std::string temp_path_;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace dtune
