// Opens an input of rows by what it is: a JSON array / JSON Lines file (plain, .gz or .zst:
// row_reader.h), a Parquet file, an Arrow IPC file or stream, or a `datasets` save_to_disk folder
// (arrow_rows.h). Told apart by the file's first bytes (or being a folder), not its name.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dtune/data/row_reader.h"

namespace dtune {

enum class InputKind {
  kJson,         // JSON array or JSON Lines, possibly gzip/zstd-compressed
  kParquet,      // "PAR1" at both ends
  kArrowFile,    // Arrow IPC file format ("ARROW1" magic; Feather v2)
  kArrowStream,  // Arrow IPC stream format (what `datasets` writes as data-*.arrow)
  kArrowFolder,  // a `datasets` save_to_disk folder: its data-*.arrow files in order
};
// Throws dtune::Error naming path when it does not exist or cannot be read.
InputKind detect_input_kind(const std::string& path);
const char* input_kind_name(InputKind kind);

// The reader for path. Throws dtune::Error naming the file when it cannot be opened or is
// damaged (a truncated Parquet file, an Arrow file of an unsupported metadata version).
std::unique_ptr<RowSource> open_row_source(const std::string& path, RowReaderOptions options);

// Field names of the input's rows, for detecting the row format: a JSON file's first row's
// keys (a bad first row throws, naming it; empty for a file without rows), a Parquet / Arrow
// input's column names.
std::vector<std::string> first_row_fields(const std::string& path);

}  // namespace dtune
