// Test helper: a pretokenized HDF5 file from given rows, written through Hdf5Writer.
#pragma once

#include <string>
#include <vector>

#include "dtune/data/hdf5_writer.h"

namespace dtune::test {

struct SyntheticRow {
  std::vector<int32_t> ids;
  int32_t prompt_length = 0;
  bool eval = false;
};

inline void write_synthetic_h5(const std::string& path, const std::vector<SyntheticRow>& rows,
                               int64_t vocab_size = 1000) {
  Hdf5Writer writer(path);
  for (const SyntheticRow& r : rows) writer.append(r.eval, r.ids, r.prompt_length);
  PretokenizedInfo info;
  info.dtune_version = "test";
  info.tokenizer_path = "synthetic";
  info.tokenizer_sha256 = std::string(64, '0');
  info.vocab_size = vocab_size;
  info.template_name = "recipe";
  info.template_text = "{a}{@completion}{b}";
  info.add_bos = "auto";
  info.source_path = "synthetic.json";
  info.source_sha256 = std::string(64, '1');
  info.max_length = 1024;
  info.seed = 42;
  info.eval_fraction = 0.5;
  writer.finish(info);
}

// Row i (0-based) of length lengths[i]: ids 10*i + k (k = 0..len-1), prompt = prompts[i].
inline std::vector<SyntheticRow> make_rows(const std::vector<int32_t>& lengths,
                                           const std::vector<int32_t>& prompts) {
  std::vector<SyntheticRow> rows;
  for (size_t i = 0; i < lengths.size(); ++i) {
    SyntheticRow r;
    for (int32_t k = 0; k < lengths[i]; ++k) r.ids.push_back(static_cast<int32_t>(10 * i) + k);
    r.prompt_length = prompts[i];
    rows.push_back(r);
  }
  return rows;
}

}  // namespace dtune::test
