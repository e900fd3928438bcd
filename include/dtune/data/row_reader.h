// Streams rows (JSON objects with string fields) from a JSON array file or a JSON Lines file,
// one row at a time, so that a multi-GB export never sits in memory whole.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "dtune/core/sha256.h"
#include "dtune/data/byte_source.h"
#include "dtune/data/conversation.h"

namespace dtune {

// One row: the requested fields' values, in the order the reader was asked for them.
struct Row {
  int64_t number = 0;               // 1-based position in the file (array element / JSONL row)
  int source = 0;                   // index of the input it came from (--input order)
  std::vector<std::string> values;  // values[i] is the field fields[i] (UTF-8 checked)
  // Conversational formats: the row's turns (prompt then completion for prompt-completion),
  // validated by join_conversation, and the index of the first turn that may take the loss.
  std::vector<ChatMessage> messages;
  size_t first_trained = 0;
  std::vector<std::string> keys;    // the object's field names, when record_keys is set
};

struct RowReaderOptions {
  // Field names every row must carry as JSON strings; extra fields are ignored.
  std::vector<std::string> fields;
  // false: the first bad row throws dtune::Error. true: bad rows are logged as warnings
  // (first kMaxLoggedBadRows of them), counted in skipped_rows(), and reading goes on.
  bool skip_bad_rows = false;
  // A conversational format (conversation.h): each row must also carry
  // conversation_fields(format) as lists of messages, checked and joined into Row::messages.
  RowFormat format = RowFormat::kTemplate;
  bool record_keys = false;  // fill Row::keys (for detecting the format from the first row)
};

// A stream of rows from one input (JSON/JSONL here; Parquet/Arrow in arrow_rows.h). Opened
// with open_row_source (row_source.h), which picks the reader from the file's first bytes.
class RowSource {
 public:
  virtual ~RowSource();
  // Fills row with the next good row; false at end of input. Throws dtune::Error on a bad
  // row (unless skip_bad_rows) and on I/O errors or a damaged file (always).
  virtual bool next(Row& row) = 0;
  virtual int64_t skipped_rows() const = 0;
  virtual int64_t bytes_read() const = 0;  // of file_size(), for progress
  virtual int64_t file_size() const = 0;
  // Hex sha256 of the input's bytes as stored; valid only after next() returned false.
  virtual const std::string& sha256() const = 0;
};

// Checks a parsed row object against options (the template's string fields; the format's
// message lists, joined by join_conversation) and fills row.values / messages / keys. Returns
// "" or the problem, naming the field ("field \"Response\" is missing (the row has: ...)"); the
// caller adds file and row. turns: scratch space, reused between rows.
std::string fill_row(const nlohmann::json& object, const RowReaderOptions& options, Row& row,
                     std::vector<std::vector<ChatMessage>>& turns);

// JSON rows. The file may be gzip- or zstd-compressed (byte_source.h: detected from its first bytes,
// decompressed as it is read). Format is auto-detected by the first non-space byte of the
// (decompressed) text (a UTF-8 BOM is ignored): '[' means a JSON array of objects, '{' means
// JSON Lines (one object per non-blank line). Line numbers count lines of the decompressed text.
// Errors name the file, the 1-based row number, the line, and the field, e.g.
//   data.json: row 7 (line 31): field "Response" is missing; every row needs ...
// Kinds: malformed JSON, missing field, non-string field, invalid UTF-8, empty file,
// not an object. An empty file and a truncated array are errors even with skip_bad_rows.
class RowReader final : public RowSource {
 public:
  static constexpr int kMaxLoggedBadRows = 20;

  RowReader(const std::string& path, RowReaderOptions options);
  ~RowReader() override;
  RowReader(const RowReader&) = delete;
  RowReader& operator=(const RowReader&) = delete;

  // Fills row with the next good row; false at end of input. Throws dtune::Error on a bad
  // row (unless skip_bad_rows) and on I/O errors.
  bool next(Row& row) override;

  int64_t rows_read() const { return rows_seen_ - skipped_; }  // good rows returned so far
  int64_t skipped_rows() const override { return skipped_; }
  bool is_json_lines() const { return json_lines_; }
  // File bytes (compressed, as on disk) read so far, and the file's size: progress reporting.
  int64_t bytes_read() const override { return source_->file_bytes_read(); }
  int64_t file_size() const override { return file_size_; }
  Compression compression() const { return source_->compression(); }
  // Hex sha256 of every byte of the file as stored (compressed); valid only after next()
  // returned false.
  const std::string& sha256() const override;
  const std::string& path() const { return path_; }

 private:
  int peek_byte();  // next byte without consuming it, or -1 at end of file
  int take_byte();  // consumes one byte (counts lines), or -1 at end of file
  void skip_space();
  // Reads the bytes of one array element up to (not including) the ',' or ']' that ends it,
  // at bracket depth 0 outside strings. Returns false at end of file.
  bool read_array_element(std::string& out, int64_t& start_line);
  bool read_json_line(std::string& out, int64_t& start_line);
  // Parses and validates one row's bytes; returns false (after counting) when skipped.
  bool parse_row(const std::string& bytes, int64_t start_line, Row& row);
  [[noreturn]] void fail(int64_t line, const std::string& what) const;
  void report_bad_row(int64_t line, const std::string& what);
  void fill_buffer();

  std::string path_;
  RowReaderOptions options_;
  std::unique_ptr<ByteSource> source_;
  std::vector<char> buffer_;
  size_t buffer_pos_ = 0;
  size_t buffer_len_ = 0;
  bool eof_ = false;
  bool json_lines_ = false;
  bool array_closed_ = false;
  int64_t line_ = 1;
  int64_t rows_seen_ = 0;
  int64_t skipped_ = 0;
  int64_t file_size_ = 0;
  std::string digest_;
  std::string element_;  // reused buffer for one row's bytes
  std::vector<std::vector<ChatMessage>> turns_;  // reused: one list per conversation field
};

// Offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code points above
// U+10FFFF included), or -1 when bytes are valid UTF-8: utf8::find_invalid in the row's terms.
int64_t find_invalid_utf8(std::string_view bytes);

}  // namespace dtune
