// TensorBoard scalar events; see tensorboard_writer.h for the format.
#include "dtune/train/tensorboard_writer.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <vector>

#include "dtune/core/durable_file.h"
#include "dtune/core/error.h"

namespace dtune {
namespace {

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

uint32_t masked_crc(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

// Protobuf wire encoding, just what Event and Summary need.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_fixed(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
void put_bytes_field(std::string& out, int field, const std::string& bytes) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}

// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
std::string make_event(int64_t step, const std::string* file_version, const std::string* summary) {
  std::string ev;
  const double wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  put_varint(ev, (1 << 3) | 1);
  put_fixed(ev, &wall, 8);
  put_varint(ev, (2 << 3) | 0);
  put_varint(ev, static_cast<uint64_t>(step));
  if (file_version) put_bytes_field(ev, 3, *file_version);
  if (summary) put_bytes_field(ev, 5, *summary);
  return ev;
}

// Reads a varint at p (< end); false when it runs past end or past 10 bytes.
bool get_varint(const uint8_t*& p, const uint8_t* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; p < end && shift < 70; shift += 7) {
    const uint8_t b = *p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// Event.step (field 2) of an encoded Event; 0 when absent (protobuf's default), nullopt when the
// bytes do not parse as a protobuf message.
std::optional<int64_t> event_step(const std::string& event) {
  const auto* p = reinterpret_cast<const uint8_t*>(event.data());
  const uint8_t* end = p + event.size();
  int64_t step = 0;
  while (p < end) {
    uint64_t key = 0, v = 0;
    if (!get_varint(p, end, key)) return std::nullopt;
    switch (key & 7) {
      case 0:
        if (!get_varint(p, end, v)) return std::nullopt;
        if ((key >> 3) == 2) step = static_cast<int64_t>(v);
        break;
      case 1: if (end - p < 8) return std::nullopt; p += 8; break;
      case 5: if (end - p < 4) return std::nullopt; p += 4; break;
      case 2:
        if (!get_varint(p, end, v) || v > static_cast<uint64_t>(end - p)) return std::nullopt;
        p += v;
        break;
      default: return std::nullopt;
    }
  }
  return step;
}

std::string read_all(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  DTUNE_CHECK(f != nullptr, "cannot read TensorBoard events ", path, ": ", std::strerror(errno));
  std::string bytes;
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) bytes.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  DTUNE_CHECK(!failed, "cannot read TensorBoard events ", path, ": ", std::strerror(errno));
  return bytes;
}

// Length of the whole TFRecord at bytes[at] (12-byte header, event, 4-byte CRC), or 0 when
// it is torn: shorter than its header says, or a CRC does not match.
size_t record_size(const std::string& bytes, size_t at) {
  const size_t left = bytes.size() - at;
  if (left < 12) return 0;
  uint64_t len = 0;
  uint32_t len_crc = 0, data_crc = 0;
  std::memcpy(&len, bytes.data() + at, 8);
  std::memcpy(&len_crc, bytes.data() + at + 8, 4);
  if (masked_crc(&len, 8) != len_crc || len > left - 12 || left - 12 - len < 4) return 0;
  std::memcpy(&data_crc, bytes.data() + at + 12 + len, 4);
  if (masked_crc(bytes.data() + at + 12, len) != data_crc) return 0;
  return 12 + static_cast<size_t>(len) + 4;
}

// The records of an events file to keep: those of steps <= step, up to the first torn record.
// Adds to *dropped the number of records left out (a torn tail counts as one).
std::string kept_records(const std::string& bytes, int64_t step, int64_t* dropped) {
  std::string kept;
  for (size_t at = 0; at < bytes.size();) {
    const size_t size = record_size(bytes, at);
    if (size == 0) {
      ++*dropped;
      break;
    }
    const std::optional<int64_t> s = event_step(bytes.substr(at + 12, size - 16));
    if (s.has_value() && *s > step) {
      ++*dropped;
    } else {
      kept.append(bytes, at, size);  // an event that does not parse is kept as it is
    }
    at += size;
  }
  return kept;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  uint32_t c = 0xffffffffu;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  DTUNE_CHECK(!ec, "cannot create TensorBoard folder ", dir, ": ", ec.message());
  char host[256] = "host";
  gethostname(host, sizeof(host) - 1);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  path_ = dir + "/events.out.tfevents." + std::to_string(now) + "." + host + ".dtune";
  file_ = std::fopen(path_.c_str(), "ab");
  DTUNE_CHECK(file_ != nullptr, "cannot write TensorBoard events to ", path_, ": ", std::strerror(errno),
              " (set log.tensorboard = false to skip them)");
  const std::string version = "brain.Event:2";
  write_record(make_event(0, &version, nullptr));
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  // Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
  std::string v;
  put_bytes_field(v, 1, tag);
  const float f = static_cast<float>(value);
  put_varint(v, (2 << 3) | 5);
  put_fixed(v, &f, 4);
  std::string summary;
  put_bytes_field(summary, 1, v);
  write_record(make_event(step, nullptr, &summary));
}

void TensorBoardWriter::write_record(const std::string& event) {
  const uint64_t len = event.size();
  const uint32_t len_crc = masked_crc(&len, 8);
  const uint32_t data_crc = masked_crc(event.data(), event.size());
  const bool ok = std::fwrite(&len, 8, 1, file_) == 1 && std::fwrite(&len_crc, 4, 1, file_) == 1 &&
                  std::fwrite(event.data(), 1, event.size(), file_) == event.size() &&
                  std::fwrite(&data_crc, 4, 1, file_) == 1;
  DTUNE_CHECK(ok, "writing TensorBoard events to ", path_, " failed: ", std::strerror(errno));
}

void TensorBoardWriter::flush() { std::fflush(file_); }

int64_t drop_tensorboard_events_after(const std::string& dir, int64_t step) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return 0;
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.find("tfevents") != std::string::npos) {
      files.push_back(e.path().string());
    }
  }
  DTUNE_CHECK(!ec, "cannot list TensorBoard folder ", dir, ": ", ec.message());
  int64_t total = 0;
  for (const std::string& path : files) {
    int64_t dropped = 0;
    const std::string kept = kept_records(read_all(path), step, &dropped);
    if (dropped == 0) continue;
    total += dropped;
    // Not "*tfevents*": TensorBoard would read a leftover of a crash here as another events file.
    const std::string tmp = dir + "/.dtune-rewrite.tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    DTUNE_CHECK(f != nullptr, "cannot write ", tmp, ": ", std::strerror(errno));
    const bool ok = std::fwrite(kept.data(), 1, kept.size(), f) == kept.size();
    const bool closed = std::fclose(f) == 0;
    if (!ok || !closed) {
      std::remove(tmp.c_str());
      throw Error(str("cannot write ", tmp, ": ", std::strerror(errno), " (disk full?)"));
    }
    try {
      publish_file(tmp, path);
    } catch (...) {
      std::remove(tmp.c_str());
      throw;
    }
  }
  return total;
}

}  // namespace dtune
