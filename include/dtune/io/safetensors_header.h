// The safetensors header: u64 little-endian size N, then N bytes of JSON describing each tensor's
// dtype, shape and byte range in the data section that follows. Torch-free, so the fuzzer can
// exercise the validation without libtorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dtune {

struct TensorEntry {
  std::string dtype;             // "F32" | "F16" | "BF16" | "I64" | "I32" | ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;   // byte range inside the data section
};

struct SafetensorsHeader {
  std::map<std::string, TensorEntry> entries;
  std::map<std::string, std::string> metadata;  // "__metadata__"
  uint64_t data_offset = 0;                     // = 8 + N: where the data section starts
  uint64_t data_size = 0;                       // bytes in the data section
};

// Largest header accepted (the JSON part); real files use well under 10 MB.
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

// Validates `bytes` (the whole file, `size` bytes) as untrusted input: header size <= file size
// and <= kMaxSafetensorsHeaderBytes, a JSON object without duplicate keys, known dtypes, shape
// dims >= 0 with an overflow-checked element count, byte ranges inside the data section with
// end - begin == numel * itemsize, no overlaps, and the data section fully covered. Throws
// dtune::Error whose message names `file` (and the tensor) and what is wrong.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, const std::string& file);

// Bytes per element of a safetensors dtype name, or 0 when the name is unknown.
size_t safetensors_dtype_size(const std::string& dtype);

}  // namespace dtune
