// libFuzzer target for parse_safetensors_header: any byte string must either parse into entries
// that satisfy the documented invariants or throw dtune::Error -- never crash or read out of range.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dtune/core/error.h"
#include "dtune/io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Copy into an exactly-sized heap buffer so ASan flags any read past the end.
  uint8_t* copy = static_cast<uint8_t*>(std::malloc(size == 0 ? 1 : size));
  for (size_t i = 0; i < size; ++i) copy[i] = data[i];
  try {
    const dtune::SafetensorsHeader h = dtune::parse_safetensors_header(copy, size, "fuzz.safetensors");
    // Invariants a successful parse promises to loaders.
    if (h.data_offset + h.data_size != size) std::abort();
    for (const auto& [name, e] : h.entries) {
      if (e.begin > e.end || e.end > h.data_size) std::abort();
      uint64_t n = dtune::safetensors_dtype_size(e.dtype);
      for (int64_t d : e.shape) {
        if (d < 0) std::abort();
        n *= static_cast<uint64_t>(d);
      }
      if (n != e.end - e.begin) std::abort();
    }
  } catch (const dtune::Error&) {
    // Rejected input: the expected outcome for almost all fuzz inputs.
  }
  std::free(copy);
  return 0;
}
