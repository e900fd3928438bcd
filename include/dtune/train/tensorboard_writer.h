// A minimal TensorBoard event-file writer for scalars: TFRecord framing (length, masked
// CRC-32C) around hand-encoded Event/Summary protobufs, so no protobuf dependency is needed.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace dtune {

class TensorBoardWriter {
 public:
  // Creates dir and events.out.tfevents.<unix time>.<host>.dtune inside it.
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void add_scalar(const std::string& tag, double value, int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);
  std::string path_;
  std::FILE* file_ = nullptr;
};

// CRC-32C (Castagnoli), as TFRecord uses it; exposed for tests.
uint32_t crc32c(const void* data, size_t n);

}  // namespace dtune
