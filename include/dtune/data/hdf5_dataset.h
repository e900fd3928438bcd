// Read-only access to one split (/train or /eval) of a pretokenized HDF5 file: the row index
// is held in memory, token ids are read per row with hyperslab reads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dtune/data/hdf5_format.h"

namespace dtune {

// open() validates before returning: root attributes and format version (1 or 2), that
// /<split> holds tokens (int32, 1-D), offsets (int64, n_rows+1, offsets[0]=0, non-decreasing,
// last = tokens length), prompt_lengths (int32, n_rows, within each row) and, from version 2,
// loss_mask (int8, one per token). Token ids are
// checked against [0, vocab_size) as rows are read (read_row throws naming the row), or for
// the whole split with validate_all_ids(). Every failure is a dtune::Error naming the file and
// dataset; a changed byte fails a checksum and reads "FILE: corrupt (checksum mismatch in
// /train/tokens chunk N); re-run `dtune pretokenize` ..." (docs/DATA_FORMAT.md, "Corruption";
// files written before the checksums are read unchecked). Not thread-safe (the HDF5 library
// is built serial); one reader per thread/rank.
class Hdf5Dataset {
 public:
  // split: "train" or "eval".
  static Hdf5Dataset open(const std::string& path, const std::string& split);
  // Attributes of the file without opening a split.
  static PretokenizedInfo read_info(const std::string& path);

  Hdf5Dataset(Hdf5Dataset&&) noexcept;
  Hdf5Dataset& operator=(Hdf5Dataset&&) noexcept;
  ~Hdf5Dataset();

  int64_t num_rows() const { return static_cast<int64_t>(prompt_lengths_.size()); }
  int64_t num_tokens() const { return offsets_.empty() ? 0 : offsets_.back(); }
  int64_t row_length(int64_t row) const { return offsets_[row + 1] - offsets_[row]; }
  int32_t prompt_length(int64_t row) const { return prompt_lengths_[row]; }
  // Index of row's input (--input order, info().sources); 0 in files of one input / version 1.
  int32_t source_id(int64_t row) const { return source_ids_.empty() ? 0 : source_ids_[row]; }
  const PretokenizedInfo& info() const { return info_; }
  const std::string& path() const { return path_; }
  const std::string& split() const { return split_; }

  // Token ids of row (0 <= row < num_rows()), replacing out's contents.
  void read_row(int64_t row, std::vector<int32_t>& out) const;
  std::vector<int32_t> read_row(int64_t row) const;
  // Which ids of row take the loss (1) or not (0), one per id, replacing out's contents.
  // Format version 2 stores it (/<split>/loss_mask); for version 1 files it is 0 on the first
  // prompt_length(row) ids and 1 after. Throws naming the row on a value other than 0/1.
  void read_loss_mask(int64_t row, std::vector<int8_t>& out) const;
  // Reads every row once (a full pass, for checks after writing); throws on the first bad id.
  void validate_all_ids() const;

 private:
  Hdf5Dataset();
  struct Handles;
  std::string path_;
  std::string split_;
  PretokenizedInfo info_;
  std::vector<int64_t> offsets_;
  std::vector<int32_t> prompt_lengths_;
  std::vector<int32_t> source_ids_;  // empty for version 1 files
  std::unique_ptr<Handles> h_;
};

}  // namespace dtune
