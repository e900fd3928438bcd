// Validated read-only access to a pretokenized HDF5 split; see hdf5_dataset.h.
#include "dtune/data/hdf5_dataset.h"

#include <sys/stat.h>

#include <algorithm>

#include "dtune/data/row_index_checks.h"
#include "h5_util.h"

namespace dtune {
namespace {

constexpr size_t kChunkCacheBytes = 32u << 20;  // decompressed tokens chunks kept per reader
constexpr size_t kChunkCacheSlots = 12421;      // prime, >> chunks in the cache

h5::Handle open_file(const std::string& path) {
  h5::silence_errors();
  struct stat st {};
  DTUNE_CHECK(::stat(path.c_str(), &st) == 0, path,
              ": no such file; create it with `dtune pretokenize --output ", path, "`");
  DTUNE_CHECK(H5Fis_hdf5(path.c_str()) > 0, path,
              ": not an HDF5 file (or its header is damaged); re-run `dtune pretokenize`");
  return h5::Handle(H5_READ_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path,
                                  "the file's header", "opening as HDF5"));
}

// Opens name in group and checks it is a 1-D dataset of integers of the given byte size.
// path: the file; group_name: "/train" or "/eval" (errors name "/train/<name>").
h5::Handle open_column(hid_t group, const char* name, size_t elem_size, const std::string& path,
                       const std::string& group_name, hsize_t& length) {
  const std::string object = group_name + "/" + name;
  const std::string where = path + ": " + object;
  const htri_t exists = H5_READ_CHECK(H5Lexists(group, name, H5P_DEFAULT), path, object,
                                      "looking up");
  DTUNE_CHECK(exists > 0, where, ": dataset is missing; the file is not a complete ",
              "`dtune pretokenize` output");
  h5::Handle dapl(H5_CHECK(H5Pcreate(H5P_DATASET_ACCESS), where, ": access properties"));
  H5_CHECK(H5Pset_chunk_cache(dapl.get(), kChunkCacheSlots, kChunkCacheBytes, 1.0), where,
           ": chunk cache");
  h5::Handle dset(H5_READ_CHECK(H5Dopen2(group, name, dapl.get()), path, object, "opening"));
  h5::Handle type(H5_READ_CHECK(H5Dget_type(dset.get()), path, object, "reading the datatype"));
  DTUNE_CHECK(H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_size(type.get()) == elem_size &&
                  H5Tget_sign(type.get()) == H5T_SGN_2,
              where, ": wrong dtype; expected int", elem_size * 8, " (see docs/DATA_FORMAT.md)");
  h5::Handle space(H5_READ_CHECK(H5Dget_space(dset.get()), path, object, "reading the dataspace"));
  DTUNE_CHECK(H5Sget_simple_extent_ndims(space.get()) == 1, where, ": expected a 1-D dataset");
  H5_READ_CHECK(H5Sget_simple_extent_dims(space.get(), &length, nullptr), path, object,
                "reading the shape");
  return dset;
}

// Elements per chunk of a 1-D dataset; 0 when it is not chunked (contiguous, compact).
hsize_t chunk_length(hid_t dset, const std::string& path, const std::string& object) {
  h5::Handle dcpl(H5_READ_CHECK(H5Dget_create_plist(dset), path, object,
                                "reading the creation properties"));
  if (H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return 0;
  hsize_t chunk = 0;
  H5_READ_CHECK(H5Pget_chunk(dcpl.get(), 1, &chunk), path, object, "reading the chunk shape");
  return chunk;
}

// Reads elements [start, start + count) of a 1-D dataset; when H5Dread fails, returns false
// with HDF5's error stack in *stack (taken at once: the next HDF5 call would clear it).
template <typename T>
bool try_read(hid_t dset, hid_t mem_type, hsize_t start, hsize_t count, T* out,
              const std::string& path, const std::string& object, h5::ErrorStack* stack) {
  h5::Handle file_space(H5_READ_CHECK(H5Dget_space(dset), path, object, "reading the dataspace"));
  H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr),
           path, ": ", object, ": selecting [", start, ", ", start + count, ")");
  h5::Handle mem_space(H5_CHECK(H5Screate_simple(1, &count, nullptr), path, ": ", object,
                                ": memory space"));
  if (H5Dread(dset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, out) >= 0) return true;
  *stack = h5::take_error_stack();
  return false;
}

// Reads elements [start, start + count) of the 1-D dataset `object` of `path`. On a checksum
// failure the chunks of the range are re-read one by one so the error names the bad chunk.
template <typename T>
void read_range(hid_t dset, hid_t mem_type, hsize_t start, hsize_t count, T* out,
                const std::string& path, const std::string& object) {
  if (count == 0) return;
  h5::ErrorStack first;
  if (try_read(dset, mem_type, start, count, out, path, object, &first)) return;
  const hsize_t chunk = first.checksum ? chunk_length(dset, path, object) : 0;
  for (hsize_t c = chunk == 0 ? 0 : start / chunk; chunk != 0 && c * chunk < start + count; ++c) {
    const hsize_t begin = std::max(start, c * chunk);
    const hsize_t end = std::min(start + count, (c + 1) * chunk);
    h5::ErrorStack stack;
    if (!try_read(dset, mem_type, begin, end - begin, out + (begin - start), path, object,
                  &stack)) {
      h5::throw_read_error(path, str(object, " chunk ", c), str("reading chunk ", c), stack,
                           __FILE__, __LINE__);
    }
  }
  // Not a checksum failure, or no single chunk failed on its own: report the whole range.
  h5::throw_read_error(path, object, str("reading elements [", start, ", ", start + count, ")"),
                       first, __FILE__, __LINE__);
}

PretokenizedInfo read_root_info(hid_t file, const std::string& path) {
  PretokenizedInfo info;
  info.format_version = h5::read_attr_int(file, "format_version", path);
  DTUNE_CHECK(info.format_version >= kOldestDataFormatVersion && info.format_version <= kDataFormatVersion,
              path, ": data format version ", info.format_version, ", this dtune reads versions ",
              kOldestDataFormatVersion, " to ", kDataFormatVersion,
              "; re-run `dtune pretokenize` with this dtune");
  info.dtune_version = h5::read_attr_string(file, "dtune_version", path);
  info.tokenizer_path = h5::read_attr_string(file, "tokenizer_path", path);
  info.tokenizer_sha256 = h5::read_attr_string(file, "tokenizer_sha256", path);
  info.vocab_size = h5::read_attr_int(file, "vocab_size", path);
  info.bos_id = h5::read_attr_int(file, "bos_id", path);
  info.eos_id = h5::read_attr_int(file, "eos_id", path);
  info.pad_id = h5::read_attr_int(file, "pad_id", path);
  info.template_name = h5::read_attr_string(file, "template_name", path);
  info.template_text = h5::read_attr_string(file, "template_text", path);
  info.add_bos = h5::read_attr_string(file, "add_bos", path);
  info.source_path = h5::read_attr_string(file, "source_path", path);
  info.source_sha256 = h5::read_attr_string(file, "source_sha256", path);
  if (h5::has_attr(file, "sources", path)) info.sources = h5::read_attr_string(file, "sources", path);
  info.num_train_rows = h5::read_attr_int(file, "num_train_rows", path);
  info.num_eval_rows = h5::read_attr_int(file, "num_eval_rows", path);
  info.num_skipped_rows = h5::read_attr_int(file, "num_skipped_rows", path);
  info.num_truncated_rows = h5::read_attr_int(file, "num_truncated_rows", path);
  info.num_dropped_rows = h5::read_attr_int(file, "num_dropped_rows", path);
  info.max_length = h5::read_attr_int(file, "max_length", path);
  info.seed = h5::read_attr_int(file, "seed", path);
  info.eval_fraction = h5::read_attr_double(file, "eval_fraction", path);
  if (h5::has_attr(file, kStringAttributesSha256, path)) {  // absent in files before issue 17
    DTUNE_CHECK(h5::read_attr_string(file, kStringAttributesSha256, path) ==
                    string_attributes_sha256(info),
                path, ": corrupt (checksum mismatch in the root string attributes); re-run ",
                "`dtune pretokenize` to write it again");
  }
  DTUNE_CHECK(info.vocab_size > 0 && info.vocab_size <= (int64_t{1} << 31), path,
              ": attribute vocab_size = ", info.vocab_size, " is out of range");
  return info;
}

}  // namespace

struct Hdf5Dataset::Handles {
  h5::Handle file;
  h5::Handle group;
  h5::Handle tokens;
  h5::Handle loss_mask;  // format version >= 2
};

Hdf5Dataset::Hdf5Dataset() : h_(std::make_unique<Handles>()) {}
Hdf5Dataset::Hdf5Dataset(Hdf5Dataset&&) noexcept = default;
Hdf5Dataset& Hdf5Dataset::operator=(Hdf5Dataset&&) noexcept = default;
Hdf5Dataset::~Hdf5Dataset() = default;

PretokenizedInfo Hdf5Dataset::read_info(const std::string& path) {
  h5::Handle file = open_file(path);
  return read_root_info(file.get(), path);
}

Hdf5Dataset Hdf5Dataset::open(const std::string& path, const std::string& split) {
  DTUNE_CHECK(split == kTrainGroup || split == kEvalGroup, "internal: split must be 'train' or ",
              "'eval', got '", split, "'");
  Hdf5Dataset d;
  d.path_ = path;
  d.split_ = split;
  d.h_->file = open_file(path);
  d.info_ = read_root_info(d.h_->file.get(), path);
  const std::string group = "/" + split;
  const std::string where = path + ": " + group;
  const htri_t exists = H5_READ_CHECK(H5Lexists(d.h_->file.get(), split.c_str(), H5P_DEFAULT),
                                      path, group, "looking up the group");
  DTUNE_CHECK(exists > 0, where, ": group is missing; the file is not a `dtune pretokenize` output");
  d.h_->group = h5::Handle(H5_READ_CHECK(H5Gopen2(d.h_->file.get(), split.c_str(), H5P_DEFAULT),
                                         path, group, "opening the group"));
  hsize_t n_tokens = 0, n_offsets = 0, n_prompts = 0;
  d.h_->tokens = open_column(d.h_->group.get(), kTokensName, 4, path, group, n_tokens);
  h5::Handle offsets = open_column(d.h_->group.get(), kOffsetsName, 8, path, group, n_offsets);
  h5::Handle prompts = open_column(d.h_->group.get(), kPromptLengthsName, 4, path, group,
                                   n_prompts);
  // Sizes first, before reading arrays of those sizes (check_row_index repeats them).
  DTUNE_CHECK(n_offsets == n_prompts + 1, where, "/offsets has ", n_offsets,
              " entries but prompt_lengths has ", n_prompts, "; expected n_rows + 1 offsets");
  const int64_t expected_rows = split == kTrainGroup ? d.info_.num_train_rows : d.info_.num_eval_rows;
  DTUNE_CHECK(static_cast<int64_t>(n_prompts) == expected_rows, where, " has ", n_prompts,
              " rows but the file's attributes say ", expected_rows, "; the file is corrupt");
  d.offsets_.resize(n_offsets);
  d.prompt_lengths_.resize(n_prompts);
  read_range(offsets.get(), H5T_NATIVE_INT64, 0, n_offsets, d.offsets_.data(), path,
             group + "/" + kOffsetsName);
  read_range(prompts.get(), H5T_NATIVE_INT32, 0, n_prompts, d.prompt_lengths_.data(), path,
             group + "/" + kPromptLengthsName);
  check_row_index(d.offsets_, d.prompt_lengths_, static_cast<int64_t>(n_tokens), expected_rows, where);
  if (d.info_.format_version >= 2) {
    hsize_t n_mask = 0;
    d.h_->loss_mask = open_column(d.h_->group.get(), kLossMaskName, 1, path, group, n_mask);
    DTUNE_CHECK(n_mask == n_tokens, where, "/loss_mask has ", n_mask, " entries but tokens has ", n_tokens,
                "; the file is corrupt");
    hsize_t n_sources = 0;
    h5::Handle sources = open_column(d.h_->group.get(), kSourceIdsName, 4, path, group, n_sources);
    DTUNE_CHECK(n_sources == n_prompts, where, "/source_ids has ", n_sources, " entries for ", n_prompts,
                " rows; the file is corrupt");
    d.source_ids_.resize(n_sources);
    read_range(sources.get(), H5T_NATIVE_INT32, 0, n_sources, d.source_ids_.data(), path,
               group + "/" + kSourceIdsName);
    for (hsize_t i = 0; i < n_sources; ++i) {
      DTUNE_CHECK(d.source_ids_[i] >= 0, where, "/source_ids[", i, "] = ", d.source_ids_[i], "; the file is corrupt");
    }
  }
  return d;
}

void Hdf5Dataset::read_row(int64_t row, std::vector<int32_t>& out) const {
  DTUNE_CHECK(row >= 0 && row < num_rows(), path_, ": /", split_, " row ", row,
              " out of range (", num_rows(), " rows)");
  const int64_t begin = offsets_[row];
  out.resize(static_cast<size_t>(row_length(row)));
  read_range(h_->tokens.get(), H5T_NATIVE_INT32, static_cast<hsize_t>(begin),
             static_cast<hsize_t>(out.size()), out.data(), path_, "/" + split_ + "/" + kTokensName);
  check_token_ids(out, info_.vocab_size, begin, row, path_ + ": /" + split_);
}

void Hdf5Dataset::read_loss_mask(int64_t row, std::vector<int8_t>& out) const {
  DTUNE_CHECK(row >= 0 && row < num_rows(), path_, ": /", split_, " row ", row,
              " out of range (", num_rows(), " rows)");
  out.resize(static_cast<size_t>(row_length(row)));
  if (!h_->loss_mask.valid()) {  // version 1: the loss is on every token after the prompt
    std::fill(out.begin(), out.end(), int8_t{1});
    std::fill(out.begin(), out.begin() + prompt_lengths_[row], int8_t{0});
    return;
  }
  const int64_t begin = offsets_[row];
  read_range(h_->loss_mask.get(), H5T_NATIVE_INT8, static_cast<hsize_t>(begin),
             static_cast<hsize_t>(out.size()), out.data(), path_, "/" + split_ + "/" + kLossMaskName);
  for (size_t k = 0; k < out.size(); ++k) {
    DTUNE_CHECK(out[k] == 0 || out[k] == 1, path_, ": /", split_, "/loss_mask[", begin + static_cast<int64_t>(k),
                "] (row ", row, ") = ", int{out[k]}, ", expected 0 or 1; the file is corrupt");
  }
}

std::vector<int32_t> Hdf5Dataset::read_row(int64_t row) const {
  std::vector<int32_t> out;
  read_row(row, out);
  return out;
}

void Hdf5Dataset::validate_all_ids() const {
  std::vector<int32_t> ids;
  for (int64_t r = 0; r < num_rows(); ++r) read_row(r, ids);
}

}  // namespace dtune
