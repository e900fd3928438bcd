// Several inputs in one run; see include/dtune/data/source_mix.h.
#include "dtune/data/source_mix.h"

#include <cmath>
#include <cstdlib>

#include "dtune/core/error.h"

namespace dtune {
namespace {

uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

InputSource parse_input_source(const std::string& arg) {
  InputSource s{arg, 1};
  const size_t colon = arg.rfind(':');
  if (colon == std::string::npos || colon + 1 == arg.size()) return s;
  const std::string tail = arg.substr(colon + 1);
  char* end = nullptr;
  const double w = std::strtod(tail.c_str(), &end);
  if (end == tail.c_str() || *end != '\0') return s;  // not a number: part of the path
  DTUNE_CHECK(std::isfinite(w) && w > 0, "--input ", arg, ": the weight ", tail,
              " must be a positive number (below 1 samples that fraction of the rows, above 1 repeats them)");
  s.path = arg.substr(0, colon);
  s.weight = w;
  return s;
}

int64_t row_copies(double weight, int64_t row_number, uint64_t seed, int source) {
  const double whole = std::floor(weight);
  const uint64_t h = splitmix64(splitmix64(seed ^ 0x5bd1e995ull) + static_cast<uint64_t>(row_number) * 0x9e3779b97f4a7c15ull +
                                static_cast<uint64_t>(source) * 0xd6e8feb86659fd93ull);
  const double u = static_cast<double>(h >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  return static_cast<int64_t>(whole) + (u < weight - whole ? 1 : 0);
}

uint64_t source_split_seed(uint64_t seed, int source) {
  return source == 0 ? seed : splitmix64(seed + static_cast<uint64_t>(source) * 0xa0761d6478bd642full);
}

}  // namespace dtune
