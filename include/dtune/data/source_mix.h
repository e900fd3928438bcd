// Several inputs in one pretokenize run (`--input FILE[:WEIGHT]` repeated): parsing the
// argument, and the seeded per-row decisions that sample (weight < 1) or repeat (weight > 1) a
// source's rows and draw its eval split.
#pragma once

#include <cstdint>
#include <string>

namespace dtune {

struct InputSource {
  std::string path;
  double weight = 1;  // > 0: below 1 samples that fraction of the rows, above 1 repeats them
};

// "FILE" or "FILE:WEIGHT" (the text after the last ':' when it is a positive number; so a path
// that itself ends in ":<number>" needs an explicit weight). Throws dtune::Error for a weight
// that is not a positive finite number.
InputSource parse_input_source(const std::string& arg);

// Copies of row row_number (1-based, bad rows counted) of source `source` that go into the
// output: floor(weight), plus one more with probability frac(weight), decided by a splitmix64
// hash of (row_number, seed, source) -- deterministic, about weight copies per row on average.
int64_t row_copies(double weight, int64_t row_number, uint64_t seed, int source);

// The seed of source `source`'s eval split (is_eval_row): seed itself for the first source, so a
// single-input run splits exactly as before; another stream per further source, so each
// source gives about eval_fraction of its rows to /eval.
uint64_t source_split_seed(uint64_t seed, int source);

}  // namespace dtune
