// Parquet / Arrow IPC / `datasets` folder rows through Arrow C++; see include/dtune/data/arrow_rows.h.
#include "dtune/data/arrow_rows.h"

#include <arrow/api.h>
#include <arrow/util/config.h>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/schema.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/core/sha256.h"

namespace dtune {
namespace {

constexpr int64_t kParquetBatchRows = 1024;  // rows per record batch read from a row group

[[noreturn]] void fail_file(const std::string& path, const char* what, const std::string& reason) {
  throw Error(str(path, ": not a readable ", what, " (Arrow: ", reason, "); the file is truncated, corrupt or ",
                  "written by an Arrow version this dtune does not read: write it again (pyarrow / datasets)"));
}

template <typename T>
T value_or_fail(arrow::Result<T> r, const std::string& path, const char* what) {
  if (!r.ok()) fail_file(path, what, r.status().ToString());
  return std::move(r).ValueUnsafe();
}

void ok_or_fail(const arrow::Status& s, const std::string& path, const char* what) {
  if (!s.ok()) fail_file(path, what, s.ToString());
}

bool is_string_type(const arrow::DataType& t) {
  return t.id() == arrow::Type::STRING || t.id() == arrow::Type::LARGE_STRING || t.id() == arrow::Type::STRING_VIEW;
}

// One value of a column as JSON: strings, numbers, booleans, null, lists and structs (what a
// JSON row could hold). Other types (binary, dates, maps...) are reported by name.
nlohmann::json to_json(const arrow::Array& a, int64_t i) {
  if (a.IsNull(i)) return nullptr;
  switch (a.type_id()) {
    case arrow::Type::STRING: return std::string(static_cast<const arrow::StringArray&>(a).GetView(i));
    case arrow::Type::LARGE_STRING: return std::string(static_cast<const arrow::LargeStringArray&>(a).GetView(i));
    case arrow::Type::STRING_VIEW: return std::string(static_cast<const arrow::StringViewArray&>(a).GetView(i));
    case arrow::Type::BOOL: return static_cast<const arrow::BooleanArray&>(a).Value(i);
    case arrow::Type::INT8: return static_cast<const arrow::Int8Array&>(a).Value(i);
    case arrow::Type::INT16: return static_cast<const arrow::Int16Array&>(a).Value(i);
    case arrow::Type::INT32: return static_cast<const arrow::Int32Array&>(a).Value(i);
    case arrow::Type::INT64: return static_cast<const arrow::Int64Array&>(a).Value(i);
    case arrow::Type::UINT8: return static_cast<const arrow::UInt8Array&>(a).Value(i);
    case arrow::Type::UINT16: return static_cast<const arrow::UInt16Array&>(a).Value(i);
    case arrow::Type::UINT32: return static_cast<const arrow::UInt32Array&>(a).Value(i);
    case arrow::Type::UINT64: return static_cast<const arrow::UInt64Array&>(a).Value(i);
    case arrow::Type::FLOAT: return static_cast<const arrow::FloatArray&>(a).Value(i);
    case arrow::Type::DOUBLE: return static_cast<const arrow::DoubleArray&>(a).Value(i);
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST: {
      std::shared_ptr<arrow::Array> values;
      int64_t begin = 0, end = 0;
      if (a.type_id() == arrow::Type::LIST) {
        const auto& l = static_cast<const arrow::ListArray&>(a);
        values = l.values();
        begin = l.value_offset(i);
        end = begin + l.value_length(i);
      } else {
        const auto& l = static_cast<const arrow::LargeListArray&>(a);
        values = l.values();
        begin = l.value_offset(i);
        end = begin + l.value_length(i);
      }
      nlohmann::json out = nlohmann::json::array();
      for (int64_t k = begin; k < end; ++k) out.push_back(to_json(*values, k));
      return out;
    }
    case arrow::Type::STRUCT: {
      const auto& s = static_cast<const arrow::StructArray&>(a);
      nlohmann::json out = nlohmann::json::object();
      for (int f = 0; f < s.num_fields(); ++f) out[s.type()->field(f)->name()] = to_json(*s.field(f), i);
      return out;
    }
    default:
      return str("<", a.type()->ToString(), " value>");  // a string: fill_row accepts no such field
  }
}

// Checks that the columns the options read exist with usable types; returns their schema indices.
std::vector<int> check_columns(const arrow::Schema& schema, const RowReaderOptions& options, const std::string& path) {
  std::vector<int> indices;
  std::string have;
  for (const auto& f : schema.fields()) have += (have.empty() ? "" : ", ") + f->name();
  const auto find = [&](const std::string& name, const char* needed_by) {
    const int i = schema.GetFieldIndex(name);
    DTUNE_CHECK(i >= 0, path, ": no column \"", name, "\" (the file has: ", have, "); ", needed_by, " needs it");
    indices.push_back(i);
    return schema.field(i)->type();
  };
  for (const std::string& name : options.fields) {
    const auto type = find(name, "the template");
    DTUNE_CHECK(is_string_type(*type), path, ": column \"", name, "\" is ", type->ToString(),
                ", expected string (or large_string): the template reads it as text; convert the column, e.g. ",
                "pyarrow.compute.cast(column, pyarrow.string())");
  }
  for (const std::string& name : conversation_fields(options.format)) {
    const auto type = find(name, str("--format ", row_format_name(options.format)).c_str());
    const bool list = type->id() == arrow::Type::LIST || type->id() == arrow::Type::LARGE_LIST;
    const auto* item = list ? static_cast<const arrow::BaseListType&>(*type).value_type().get() : nullptr;
    bool ok = item != nullptr && item->id() == arrow::Type::STRUCT;
    for (int f = 0; ok && f < item->num_fields(); ++f) {
      const auto& child = *item->field(f);
      const bool used = child.name() == "role" || child.name() == "content" || child.name() == "from" ||
                        child.name() == "value";
      ok = !used || is_string_type(*child.type());
    }
    DTUNE_CHECK(ok, path, ": column \"", name, "\" is ", type->ToString(), ", expected a list of structs with ",
                "string fields (", options.format == RowFormat::kShareGpt ? "from, value" : "role, content", ")");
  }
  return indices;
}

// The `version` field (flatbuf::MetadataVersion, 0 = V1 ... 4 = V5) of an Arrow IPC file's
// footer: the file ends with the footer flatbuffer, its int32 length and "ARROW1"; the footer's
// root table has version as field 0 (default V1 when absent).
int footer_metadata_version(arrow::io::ReadableFile& file, int64_t size, const std::string& path) {
  const auto bytes_at = [&](int64_t offset, int64_t n) {
    DTUNE_CHECK(offset >= 0 && n >= 0 && offset + n <= size, path, ": not a readable Arrow IPC file (its footer ",
                "points outside the file); the file is truncated or corrupt: write it again");
    return value_or_fail(file.ReadAt(offset, n), path, "Arrow IPC file");
  };
  const auto le = [](const uint8_t* p, int n) {
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  };
  const auto tail = bytes_at(size - 10, 10);
  const int64_t footer_len = static_cast<int32_t>(le(tail->data(), 4));
  const int64_t start = size - 10 - footer_len;
  const auto footer = bytes_at(start, footer_len);
  const auto at = [&](int64_t offset, int n) {
    DTUNE_CHECK(offset >= 0 && offset + n <= footer_len, path, ": not a readable Arrow IPC file (a corrupt ",
                "footer); the file is truncated or corrupt: write it again");
    return le(footer->data() + offset, n);
  };
  const int64_t table = at(0, 4);
  const int64_t vtable = table - static_cast<int32_t>(at(table, 4));
  if (at(vtable, 2) < 6) return 0;  // no version field in the vtable: the default, V1
  const int64_t field = at(vtable + 4, 2);
  return field == 0 ? 0 : static_cast<int16_t>(at(table + field, 2));
}

// Reads record batches from one Parquet file, Arrow IPC file or IPC stream.
class BatchSource {
 public:
  BatchSource(const std::string& path, InputKind kind, const RowReaderOptions* options) : path_(path), kind_(kind) {
    file_ = value_or_fail(arrow::io::ReadableFile::Open(path), path, "file");
    size_ = value_or_fail(file_->GetSize(), path, "file");
    if (kind == InputKind::kParquet) {
      parquet_ = value_or_fail(parquet::arrow::OpenFile(file_, arrow::default_memory_pool()), path, "Parquet file");
      ok_or_fail(parquet_->GetSchema(&schema_), path, "Parquet file");
      parquet_->set_batch_size(kParquetBatchRows);
      total_ = parquet_->parquet_reader()->metadata()->num_rows();
    } else if (kind == InputKind::kArrowFile) {
      ipc_file_ = value_or_fail(arrow::ipc::RecordBatchFileReader::Open(file_), path, "Arrow IPC file");
      // Arrow maps a footer metadata version it does not know to its newest (V5) and reads on;
      // a newer writer's layout would then be misread, so the raw value is checked here.
      const int version = footer_metadata_version(*file_, size_, path);
      DTUNE_CHECK(version == 3 || version == 4, path, ": an Arrow IPC file of metadata version V", version + 1,
                  "; this dtune (Arrow C++ ", ARROW_VERSION_STRING, ") reads V4 and V5 (Arrow >= 0.8): ",
                  "write it again with this pyarrow / datasets");
      schema_ = ipc_file_->schema();
    } else {
      ipc_stream_ = value_or_fail(arrow::ipc::RecordBatchStreamReader::Open(file_), path, "Arrow IPC stream");
      schema_ = ipc_stream_->schema();
    }
    if (options != nullptr) {
      columns_ = check_columns(*schema_, *options, path);
      if (kind == InputKind::kParquet) {  // the Parquet leaf columns under the chosen fields
        std::vector<int> leaves;
        const std::function<void(const parquet::arrow::SchemaField&)> add = [&](const parquet::arrow::SchemaField& f) {
          if (f.column_index >= 0) leaves.push_back(f.column_index);
          for (const auto& c : f.children) add(c);
        };
        for (int c : columns_) add(parquet_->manifest().schema_fields[static_cast<size_t>(c)]);
        std::vector<int> groups(static_cast<size_t>(parquet_->num_row_groups()));
        for (size_t g = 0; g < groups.size(); ++g) groups[g] = static_cast<int>(g);
        batches_ = value_or_fail(parquet_->GetRecordBatchReader(groups, leaves), path, "Parquet file");
      }
    }
  }

  const arrow::Schema& schema() const { return *schema_; }
  int64_t size() const { return size_; }

  // The next batch; nullptr at the end.
  std::shared_ptr<arrow::RecordBatch> next() {
    std::shared_ptr<arrow::RecordBatch> b;
    if (kind_ == InputKind::kParquet) {
      try {
        ok_or_fail(batches_->ReadNext(&b), path_, "Parquet file");
      } catch (const Error&) {
        throw;
      } catch (const std::exception& e) {  // parquet::ParquetException
        fail_file(path_, "Parquet file", e.what());
      }
    } else if (kind_ == InputKind::kArrowFile) {
      if (next_batch_ < ipc_file_->num_record_batches()) {
        b = value_or_fail(ipc_file_->ReadRecordBatch(next_batch_++), path_, "Arrow IPC file");
      }
    } else {
      ok_or_fail(ipc_stream_->ReadNext(&b), path_, "Arrow IPC stream");
    }
    if (b) rows_ += b->num_rows();
    return b;
  }

  // Bytes of the file read so far, for progress (Parquet / IPC file: by rows / batches done).
  int64_t bytes_read() const {
    if (kind_ == InputKind::kParquet) return total_ > 0 ? size_ * rows_ / total_ : size_;
    if (kind_ == InputKind::kArrowFile) {
      const int n = ipc_file_->num_record_batches();
      return n > 0 ? size_ * next_batch_ / n : size_;
    }
    const auto pos = file_->Tell();
    return pos.ok() ? *pos : 0;
  }

  const std::vector<int>& columns() const { return columns_; }

 private:
  std::string path_;
  InputKind kind_;
  std::shared_ptr<arrow::io::ReadableFile> file_;
  int64_t size_ = 0;
  std::shared_ptr<arrow::Schema> schema_;
  std::unique_ptr<parquet::arrow::FileReader> parquet_;
  std::unique_ptr<arrow::RecordBatchReader> batches_;
  std::shared_ptr<arrow::ipc::RecordBatchFileReader> ipc_file_;
  std::shared_ptr<arrow::ipc::RecordBatchStreamReader> ipc_stream_;
  std::vector<int> columns_;
  int next_batch_ = 0;
  int64_t rows_ = 0;
  int64_t total_ = 0;
};

// The data files of a `datasets` save_to_disk folder, in order: state.json's "_data_files",
// else the data-*.arrow files sorted by name.
std::vector<std::string> folder_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  const fs::path state = fs::path(dir) / "state.json";
  if (fs::exists(state)) {
    std::ifstream in(state);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error(str(state.string(), ": invalid JSON (", e.what(), "); is this a `datasets` save_to_disk folder?"));
    }
    if (j.contains("_data_files") && j["_data_files"].is_array()) {
      for (const auto& f : j["_data_files"]) {
        DTUNE_CHECK(f.contains("filename") && f["filename"].is_string(), state.string(),
                    ": an entry of _data_files has no \"filename\"");
        files.push_back((fs::path(dir) / f["filename"].get<std::string>()).string());
      }
    }
  }
  if (files.empty()) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() == ".arrow") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
  }
  DTUNE_CHECK(!files.empty(), dir, ": a folder without data-*.arrow files; --input takes a file, or a folder ",
              "written by datasets' save_to_disk (for a DatasetDict, name the split's folder, e.g. ", dir, "/train)");
  return files;
}

class ArrowRows final : public RowSource {
 public:
  ArrowRows(const std::string& path, InputKind kind, RowReaderOptions options)
      : path_(path), kind_(kind), options_(std::move(options)) {
    if (kind == InputKind::kArrowFolder) {
      files_ = folder_files(path);
    } else {
      files_ = {path};
    }
    for (const std::string& f : files_) {
      std::error_code ec;
      file_size_ += static_cast<int64_t>(std::filesystem::file_size(f, ec));
    }
    open_file(0);
  }

  bool next(Row& row) override {
    for (;;) {
      while (!batch_ || index_ >= batch_->num_rows()) {
        if (!source_) return false;
        batch_ = source_->next();
        index_ = 0;
        if (!batch_) {
          done_bytes_ += source_->size();
          source_.reset();
          if (file_ + 1 >= files_.size()) return false;
          open_file(file_ + 1);
        }
      }
      ++rows_seen_;
      ++row_in_file_;
      nlohmann::json object = nlohmann::json::object();
      const auto& schema = source_->schema();
      for (int c : source_->columns()) object[schema.field(c)->name()] = to_json(*batch_->column(c), index_);
      ++index_;
      row.number = rows_seen_;
      const std::string problem = fill_row(object, options_, row, turns_);
      if (problem.empty()) return true;
      const std::string msg = str(files_[file_], ": row ", row_in_file_, ": ", problem);
      if (!options_.skip_bad_rows) {
        throw Error(msg + "\n  (fix the row, or pass --skip-bad-rows to skip bad rows with a warning)");
      }
      ++skipped_;
      if (skipped_ <= RowReader::kMaxLoggedBadRows) log::warn("skipping " + msg);
    }
  }

  int64_t skipped_rows() const override { return skipped_; }
  int64_t bytes_read() const override { return done_bytes_ + (source_ ? source_->bytes_read() : 0); }
  int64_t file_size() const override { return file_size_; }
  const std::string& sha256() const override {
    if (digest_.empty()) {  // the files' bytes in order, read once more (the readers seek)
      Sha256 h;
      std::vector<char> buf(1 << 20);
      for (const std::string& f : files_) {
        std::ifstream in(f, std::ios::binary);
        DTUNE_CHECK(in, f, ": cannot open it to hash it");
        while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
          h.update(buf.data(), static_cast<size_t>(in.gcount()));
        }
      }
      digest_ = h.hex_digest();
    }
    return digest_;
  }

 private:
  void open_file(size_t i) {
    file_ = i;
    row_in_file_ = 0;
    const InputKind kind = kind_ == InputKind::kArrowFolder ? detect_input_kind(files_[i]) : kind_;
    DTUNE_CHECK(kind == InputKind::kArrowStream || kind == InputKind::kArrowFile || kind == InputKind::kParquet,
                files_[i], ": not an Arrow or Parquet file (in the folder ", path_, ")");
    source_ = std::make_unique<BatchSource>(files_[i], kind, &options_);
  }

  std::string path_;
  InputKind kind_;
  RowReaderOptions options_;
  std::vector<std::string> files_;
  size_t file_ = 0;
  std::unique_ptr<BatchSource> source_;
  std::shared_ptr<arrow::RecordBatch> batch_;
  int64_t index_ = 0;
  int64_t rows_seen_ = 0;
  int64_t row_in_file_ = 0;
  int64_t skipped_ = 0;
  int64_t file_size_ = 0;
  int64_t done_bytes_ = 0;
  std::vector<std::vector<ChatMessage>> turns_;
  mutable std::string digest_;
};

}  // namespace

std::unique_ptr<RowSource> open_arrow_rows(const std::string& path, InputKind kind, RowReaderOptions options) {
  return std::make_unique<ArrowRows>(path, kind, std::move(options));
}

std::vector<std::string> arrow_column_names(const std::string& path, InputKind kind) {
  const std::string file = kind == InputKind::kArrowFolder ? folder_files(path).front() : path;
  const InputKind k = kind == InputKind::kArrowFolder ? detect_input_kind(file) : kind;
  BatchSource source(file, k, nullptr);
  std::vector<std::string> names;
  for (const auto& f : source.schema().fields()) names.push_back(f->name());
  return names;
}

}  // namespace dtune
