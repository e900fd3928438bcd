// Picks the reader of an input by its first bytes; see include/dtune/data/row_source.h.
#include "dtune/data/row_source.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "dtune/core/error.h"
#include "dtune/data/arrow_rows.h"

namespace dtune {

InputKind detect_input_kind(const std::string& path) {
  std::error_code ec;
  DTUNE_CHECK(std::filesystem::exists(path, ec), path, ": no such file or folder; check --input");
  if (std::filesystem::is_directory(path, ec)) return InputKind::kArrowFolder;
  unsigned char head[8] = {};
  size_t got = 0;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    got = std::fread(head, 1, sizeof head, f);
    std::fclose(f);
  }
  if (got >= 4 && std::memcmp(head, "PAR1", 4) == 0) return InputKind::kParquet;
  if (got >= 6 && std::memcmp(head, "ARROW1", 6) == 0) return InputKind::kArrowFile;
  // IPC stream messages open with the continuation marker 0xFFFFFFFF (Arrow >= 0.15).
  if (got >= 4 && head[0] == 0xff && head[1] == 0xff && head[2] == 0xff && head[3] == 0xff) {
    return InputKind::kArrowStream;
  }
  return InputKind::kJson;
}

const char* input_kind_name(InputKind kind) {
  switch (kind) {
    case InputKind::kParquet: return "Parquet";
    case InputKind::kArrowFile: return "Arrow IPC file";
    case InputKind::kArrowStream: return "Arrow IPC stream";
    case InputKind::kArrowFolder: return "datasets folder";
    default: return "JSON";
  }
}

std::unique_ptr<RowSource> open_row_source(const std::string& path, RowReaderOptions options) {
  const InputKind kind = detect_input_kind(path);
  if (kind == InputKind::kJson) return std::make_unique<RowReader>(path, std::move(options));
  return open_arrow_rows(path, kind, std::move(options));
}

std::vector<std::string> first_row_fields(const std::string& path) {
  const InputKind kind = detect_input_kind(path);
  if (kind != InputKind::kJson) return arrow_column_names(path, kind);
  RowReaderOptions options;
  options.record_keys = true;
  RowReader reader(path, options);
  Row row;
  return reader.next(row) ? row.keys : std::vector<std::string>{};
}

}  // namespace dtune
