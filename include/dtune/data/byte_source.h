// The bytes of an input file, streamed: plain, gzip (.gz, through zlib) or zstd (.zst, through
// libzstd), told apart by the file's first bytes (magic numbers), not its name. Memory stays
// bounded whatever the file size: one read buffer and the decompressor's window.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace dtune {

enum class Compression { kNone, kGzip, kZstd };
const char* compression_name(Compression c);  // "none" | "gzip" | "zstd"

class ByteSource {
 public:
  // Throws dtune::Error naming path when it cannot be opened.
  static std::unique_ptr<ByteSource> open(const std::string& path);
  virtual ~ByteSource();

  // Up to n decompressed bytes into out; 0 only at the end of the data. Throws dtune::Error
  // naming the file on a read error, corrupt compressed data (zlib's / zstd's reason) and a
  // file that ends inside a compressed stream ("truncated").
  virtual size_t read(char* out, size_t n) = 0;

  Compression compression() const { return compression_; }
  const std::string& path() const { return path_; }
  int64_t file_size() const { return file_size_; }       // bytes on disk
  int64_t file_bytes_read() const { return file_read_; }  // of them, read so far (progress)
  // Hex sha256 of the file's bytes as stored (compressed); valid once read() returned 0.
  const std::string& sha256() const;

 protected:
  ByteSource(std::string path, Compression compression);
  // Reads up to n raw file bytes (hashing them); 0 at end of file.
  size_t read_file(unsigned char* out, size_t n);

  std::string path_;
  Compression compression_;

 private:
  struct File;
  std::unique_ptr<File> file_;
  int64_t file_size_ = 0;
  int64_t file_read_ = 0;
  mutable std::string digest_;
};

}  // namespace dtune
