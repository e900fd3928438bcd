// Rows from Parquet files, Arrow IPC files and streams, and `datasets` save_to_disk folders,
// through Apache Arrow C++ (the pyarrow wheel's libarrow/libparquet, cmake/Arrow.cmake). Read
// record batch by record batch (Parquet: row group by row group), only the columns the template
// or row format needs, so memory stays flat in the file size. Each row becomes the same JSON
// object a JSON Lines row would be, checked by fill_row: identical rows give identical results.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dtune/data/row_reader.h"
#include "dtune/data/row_source.h"

namespace dtune {

// kind: kParquet, kArrowFile, kArrowStream or kArrowFolder. Column types are checked when the
// file is opened: a template field must be a string or large_string column, a conversation
// field a list (or large_list) of structs with string fields; another type is an error naming
// the file, the column, its type and the expected one (--skip-bad-rows applies to rows, not to
// a column's type). A null value is a bad row. Errors from Arrow name the file and say it is
// truncated or corrupt.
std::unique_ptr<RowSource> open_arrow_rows(const std::string& path, InputKind kind, RowReaderOptions options);

// Column names of a Parquet / Arrow input (its schema), without reading rows.
std::vector<std::string> arrow_column_names(const std::string& path, InputKind kind);

}  // namespace dtune
