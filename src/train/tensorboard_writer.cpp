// TensorBoard scalar events; see tensorboard_writer.h for the format.
#include "dtune/train/tensorboard_writer.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>

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

}  // namespace dtune
