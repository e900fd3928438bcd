// SHA-256 (FIPS 180-4): streaming, one-shot and of a file. Fingerprints tokenizer.json, the
// source rows and other inputs recorded in output files.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dtune {

// Feed bytes with update() in any pieces; hex_digest() finishes and returns 64 lowercase hex
// characters. The object cannot be updated after hex_digest().
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  std::string hex_digest();

 private:
  void process_block(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

// Hex sha256 of a whole file, read in 1 MiB pieces. Throws dtune::Error when unreadable.
std::string sha256_file(const std::string& path);

// Hex SHA-256 of bytes in memory.
std::string sha256_hex(std::string_view bytes);

}  // namespace dtune
