// A minimal TensorBoard event-file writer for scalars: TFRecord framing (length, masked
// CRC-32C) around hand-encoded Event/Summary protobufs, so no protobuf dependency is needed;
// and the resume-time rewrite that drops events past the checkpoint's step.
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

// Resume: rewrites every events file in dir (names containing "tfevents") without the events of
// steps after `step`, so TensorBoard shows one value per step once the resumed run logs those
// steps again (metrics.jsonl gets the same treatment). A torn record at the end of a file (a
// crash mid-write: short or failing its CRC) is dropped too, with everything after it. Files
// with nothing to drop are left as they are; the others are replaced durably (publish_file).
// A missing dir is not an error. Returns the number of events dropped. Throws dtune::Error
// naming the file when it cannot be read or replaced.
int64_t drop_tensorboard_events_after(const std::string& dir, int64_t step);

}  // namespace dtune
