// safetensors files: a memory-mapped, bounds-checked reader (files are untrusted input) and an
// atomic writer. Format: u64 little-endian header size N, N bytes of JSON, then the data.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "dtune/io/safetensors_header.h"

namespace at {
class Tensor;
}

namespace dtune {

// TensorEntry (dtype, shape, byte range) and the header validation live in safetensors_header.h.

class SafetensorsFile {
 public:
  // mmaps path and validates header size, JSON, dtypes, shapes and byte ranges (in bounds,
  // sizes = numel * itemsize, no overlap, data section fully covered). Throws dtune::Error.
  static SafetensorsFile open(const std::string& path);

  const std::map<std::string, TensorEntry>& entries() const;
  const std::map<std::string, std::string>& metadata() const;  // "__metadata__"
  bool contains(const std::string& name) const;
  // A copy of the tensor converted to dtype and moved to device.
  at::Tensor load(const std::string& name, c10::ScalarType dtype, c10::Device device) const;
  // Elements [begin, end) of the tensor flattened row-major, as a 1-D copy (end - begin) in dtype
  // on device: only those bytes of the mapping are read (a rank's shard of a frozen weight).
  // Throws dtune::Error naming the file and tensor unless 0 <= begin <= end <= numel.
  at::Tensor load_range(const std::string& name, int64_t begin, int64_t end, c10::ScalarType dtype,
                        c10::Device device) const;

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

 private:
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// All weights of an HF model folder: model.safetensors, or the shards listed in
// model.safetensors.index.json.
class WeightStore {
 public:
  static WeightStore open(const std::string& model_dir);
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  const TensorEntry& entry(const std::string& name) const;
  at::Tensor load(const std::string& name, c10::ScalarType dtype, c10::Device device) const;
  // SafetensorsFile::load_range of the file that holds name.
  at::Tensor load_range(const std::string& name, int64_t begin, int64_t end, c10::ScalarType dtype,
                        c10::Device device) const;

  WeightStore(WeightStore&&) noexcept;
  WeightStore& operator=(WeightStore&&) noexcept;
  ~WeightStore();

 private:
  struct Impl;
  explicit WeightStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Writes tensors (any device, contiguous copies are made) to path atomically and durably: a
// temporary file in the same folder, then publish_file (fsync, rename, fsync the folder; see
// dtune/core/durable_file.h). Keys are written in the given order. Throws dtune::Error naming
// path when a write, fsync or rename fails; the temporary file is removed then.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// dtype names: "F32" <-> at::kFloat, "BF16" <-> at::kBFloat16, ... Throw dtune::Error for dtypes
// that have no counterpart.
c10::ScalarType scalar_type_from_safetensors(const std::string& dtype);
std::string safetensors_dtype_name(c10::ScalarType type);

}  // namespace dtune
