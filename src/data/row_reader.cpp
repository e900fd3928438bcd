// Incremental JSON array / JSON Lines row reader; see include/dtune/data/row_reader.h.
#include "dtune/data/row_reader.h"

#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/tokenizer/utf8.h"

namespace dtune {
namespace {

constexpr size_t kReadChunk = 1 << 20;  // bytes per fread

bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string describe_byte(int c) {
  if (c >= 0x20 && c < 0x7f) return str("'", static_cast<char>(c), "'");
  return str("byte 0x", std::hex, c);
}

std::string keys_of(const nlohmann::json& object) {
  std::string have;
  for (auto field = object.begin(); field != object.end(); ++field) have += (have.empty() ? "" : ", ") + field.key();
  return have;
}

const char* json_type_name(const nlohmann::json& v) {
  return v.type_name();  // "null", "number", "array", ...
}

}  // namespace

int64_t find_invalid_utf8(std::string_view bytes) {
  const std::size_t bad = utf8::find_invalid(bytes);  // the tokenizer's validator: one rule
  return bad == utf8::kValid ? -1 : static_cast<int64_t>(bad);
}

RowReader::RowReader(const std::string& path, RowReaderOptions options)
    : path_(path), options_(std::move(options)), source_(ByteSource::open(path)) {
  file_size_ = source_->file_size();
  buffer_.resize(kReadChunk);
  // A UTF-8 byte order mark is legal at the start of a text file; JSON parsers reject it.
  if (peek_byte() == 0xef) {
    take_byte();
    DTUNE_CHECK(take_byte() == 0xbb && take_byte() == 0xbf, path,
                ": starts with an invalid byte sequence (not UTF-8 text)");
  }
  skip_space();
  const int first = peek_byte();
  DTUNE_CHECK(first != -1, path,
              ": the file is empty; expected a JSON array of objects or JSON Lines");
  if (first == '[') {
    take_byte();
  } else if (first == '{') {
    json_lines_ = true;
  } else {
    fail(line_, str("expected a JSON array ('[') or JSON Lines ('{' on each line) but the file ",
                    "starts with ", describe_byte(first)));
  }
}

RowReader::~RowReader() = default;

void RowReader::fill_buffer() {
  if (eof_) return;
  buffer_len_ = source_->read(buffer_.data(), buffer_.size());
  buffer_pos_ = 0;
  if (buffer_len_ == 0) eof_ = true;
}

int RowReader::peek_byte() {
  if (buffer_pos_ == buffer_len_) fill_buffer();
  if (buffer_pos_ == buffer_len_) return -1;
  return static_cast<unsigned char>(buffer_[buffer_pos_]);
}

int RowReader::take_byte() {
  const int c = peek_byte();
  if (c == -1) return -1;
  ++buffer_pos_;
  if (c == '\n') ++line_;
  return c;
}

void RowReader::skip_space() {
  while (is_space(peek_byte())) take_byte();
}

void RowReader::fail(int64_t line, const std::string& what) const {
  throw Error(str(path_, ": line ", line, ": ", what));
}

void RowReader::report_bad_row(int64_t line, const std::string& what) {
  const std::string msg = str(path_, ": row ", rows_seen_, " (line ", line, "): ", what);
  if (!options_.skip_bad_rows) {
    throw Error(msg + "\n  (fix the row, or pass --skip-bad-rows to skip bad rows with a warning)");
  }
  ++skipped_;
  if (skipped_ <= kMaxLoggedBadRows) log::warn("skipping " + msg);
  if (skipped_ == kMaxLoggedBadRows) log::warn("further bad rows are counted but not logged");
}

bool RowReader::read_array_element(std::string& out, int64_t& start_line) {
  out.clear();
  skip_space();
  start_line = line_;
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (;;) {
    const int c = take_byte();
    if (c == -1) {
      if (out.empty() && rows_seen_ == 0) {
        fail(line_, "unexpected end of file: the JSON array is not closed with ']'");
      }
      fail(line_, str("unexpected end of file inside the JSON array after row ", rows_seen_,
                      ": the file is truncated or a closing ']' is missing"));
    }
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0 && c == ']') {
        array_closed_ = true;
        return true;
      }
      --depth;
    } else if (c == ',' && depth == 0) {
      return true;
    }
    out.push_back(static_cast<char>(c));
  }
}

bool RowReader::read_json_line(std::string& out, int64_t& start_line) {
  for (;;) {
    out.clear();
    start_line = line_;
    int c = 0;
    while ((c = take_byte()) != -1 && c != '\n') out.push_back(static_cast<char>(c));
    bool blank = true;
    for (char ch : out) blank = blank && is_space(static_cast<unsigned char>(ch));
    if (!blank) return true;
    if (c == -1) return false;
  }
}

bool RowReader::parse_row(const std::string& bytes, int64_t start_line, Row& row) {
  ++rows_seen_;
  const int64_t bad = find_invalid_utf8(bytes);
  if (bad >= 0) {
    report_bad_row(start_line, str("invalid UTF-8 at byte ", bad, " of the row; re-export the ",
                                   "file as UTF-8"));
    return false;
  }
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(bytes);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e400
    bool blank = true;
    for (char ch : bytes) blank = blank && is_space(static_cast<unsigned char>(ch));
    report_bad_row(start_line, blank ? std::string("empty element (a stray ',' in the array?)")
                                     : str("malformed JSON: ", e.what()));
    return false;
  }
  if (!object.is_object()) {
    report_bad_row(start_line, str("expected a JSON object, found a ", json_type_name(object)));
    return false;
  }
  row.number = rows_seen_;
  const std::string problem = fill_row(object, options_, row, turns_);
  if (!problem.empty()) {
    report_bad_row(start_line, problem);
    return false;
  }
  return true;
}

std::string fill_row(const nlohmann::json& object, const RowReaderOptions& options, Row& row,
                     std::vector<std::vector<ChatMessage>>& turns) {
  row.values.resize(options.fields.size());
  for (size_t i = 0; i < options.fields.size(); ++i) {
    const std::string& name = options.fields[i];
    auto it = object.find(name);
    if (it == object.end()) {
      const std::string have = object.empty() ? "" : keys_of(object);
      return str("field \"", name, "\" is missing (the row has: ", have.empty() ? "no fields" : have,
                 "); the template needs every row to have it");
    }
    if (!it->is_string()) return str("field \"", name, "\" is a ", json_type_name(*it), ", expected a string");
    row.values[i] = it->get<std::string>();
  }
  if (options.record_keys) {
    row.keys.clear();
    for (auto field = object.begin(); field != object.end(); ++field) row.keys.push_back(field.key());
  }
  if (is_conversational(options.format)) {
    const std::vector<std::string> names = conversation_fields(options.format);
    turns.resize(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      auto it = object.find(names[i]);
      if (it == object.end()) {
        return str("field \"", names[i], "\" is missing (the row has: ",
                   object.empty() ? std::string("no fields") : keys_of(object), "); --format ",
                   row_format_name(options.format), " needs every row to have it");
      }
      const std::string problem = parse_messages(*it, options.format, names[i], turns[i]);
      if (!problem.empty()) return problem;
    }
    return join_conversation(options.format, turns, row.messages, row.first_trained);
  }
  return "";
}

RowSource::~RowSource() = default;

bool RowReader::next(Row& row) {
  for (;;) {
    int64_t start_line = 0;
    bool have = false;
    if (json_lines_) {
      have = read_json_line(element_, start_line);
    } else if (!array_closed_) {
      skip_space();
      if (rows_seen_ == 0 && peek_byte() == ']') {  // "[]": no rows at all
        take_byte();
        array_closed_ = true;
      } else {
        have = read_array_element(element_, start_line);
      }
    }
    if (!have) {
      if (!json_lines_) {
        skip_space();
        const int c = peek_byte();
        if (c != -1) fail(line_, str("unexpected ", describe_byte(c), " after the closing ']'"));
      }
      while (!eof_) {  // hash whatever is left (trailing whitespace)
        buffer_pos_ = buffer_len_;
        fill_buffer();
      }
      if (digest_.empty()) digest_ = source_->sha256();
      return false;
    }
    if (parse_row(element_, start_line, row)) return true;
  }
}

const std::string& RowReader::sha256() const {
  DTUNE_CHECK(!digest_.empty(), "internal: RowReader::sha256() before the end of ", path_);
  return digest_;
}

}  // namespace dtune
