// Appends pretokenized rows to a temp HDF5 file and renames it into place; see hdf5_writer.h.
#include "dtune/data/hdf5_writer.h"

#include <unistd.h>

#include <cstdio>
#include <vector>

#include "dtune/core/durable_file.h"
#include "h5_util.h"

namespace dtune {
namespace {

constexpr hsize_t kIndexChunk = 1 << 13;  // elements per offsets / prompt_lengths chunk
constexpr int kGzipLevel = 4;             // 1..9; 4 is ~2x faster than 9 at nearly its ratio

// An extendable 1-D dataset with a staging buffer, so that HDF5 sees whole chunks.
template <typename T>
struct Column {
  h5::Handle dataset;
  std::vector<T> pending;
  hsize_t written = 0;
  hid_t mem_type = -1;
  std::string name;

  void create(hid_t group, const std::string& group_name, const char* dataset_name,
              hid_t file_type, hid_t memory_type, hsize_t chunk) {
    name = "/" + group_name + "/" + dataset_name;
    mem_type = memory_type;
    const hsize_t zero = 0, unlimited = H5S_UNLIMITED;
    h5::Handle space(H5_CHECK(H5Screate_simple(1, &zero, &unlimited), "HDF5: dataspace ", name));
    h5::Handle props(H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), "HDF5: properties of ", name));
    H5_CHECK(H5Pset_chunk(props.get(), 1, &chunk), "HDF5: chunking ", name);
    H5_CHECK(H5Pset_shuffle(props.get()), "HDF5: shuffle filter on ", name);
    H5_CHECK(H5Pset_deflate(props.get(), kGzipLevel), "HDF5: gzip filter on ", name);
    // Last in the pipeline, so the checksum covers the bytes on disk; reading a chunk whose
    // bytes changed fails instead of returning other ids (h5py applies the same filter order).
    H5_CHECK(H5Pset_fletcher32(props.get()), "HDF5: Fletcher-32 filter on ", name);
    dataset = h5::Handle(H5_CHECK(H5Dcreate2(group, dataset_name, file_type, space.get(),
                                             H5P_DEFAULT, props.get(), H5P_DEFAULT),
                                  "HDF5: creating dataset ", name));
  }

  // Writes the first count pending elements at the end of the dataset.
  void write_pending(size_t count) {
    if (count == 0) return;
    const hsize_t start = written, n = count, new_size = written + count;
    H5_CHECK(H5Dset_extent(dataset.get(), &new_size), "HDF5: growing ", name);
    h5::Handle file_space(H5_CHECK(H5Dget_space(dataset.get()), "HDF5: dataspace of ", name));
    H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &n, nullptr),
             "HDF5: selecting rows of ", name);
    h5::Handle mem_space(H5_CHECK(H5Screate_simple(1, &n, nullptr), "HDF5: memory space ", name));
    H5_CHECK(H5Dwrite(dataset.get(), mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT,
                      pending.data()),
             "HDF5: writing ", name, " (disk full?)");
    written = new_size;
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(count));
  }

  // Writes whole chunks now (all of it when final).
  void flush(hsize_t chunk, bool final) {
    const size_t whole = final ? pending.size() : pending.size() / chunk * chunk;
    write_pending(whole);
  }
  int64_t size() const { return static_cast<int64_t>(written + pending.size()); }
};

}  // namespace

struct Hdf5Writer::Split {
  h5::Handle group;
  Column<int32_t> tokens;
  Column<int64_t> offsets;
  Column<int32_t> prompt_lengths;
  Column<int8_t> loss_mask;
  Column<int32_t> source_ids;
  int64_t rows = 0;

  Split(hid_t file, const char* name) {
    group = h5::Handle(H5_CHECK(H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                "HDF5: creating group /", name));
    tokens.create(group.get(), name, kTokensName, H5T_STD_I32LE, H5T_NATIVE_INT32,
                  static_cast<hsize_t>(kTokenChunk));
    offsets.create(group.get(), name, kOffsetsName, H5T_STD_I64LE, H5T_NATIVE_INT64, kIndexChunk);
    prompt_lengths.create(group.get(), name, kPromptLengthsName, H5T_STD_I32LE, H5T_NATIVE_INT32,
                          kIndexChunk);
    loss_mask.create(group.get(), name, kLossMaskName, H5T_STD_I8LE, H5T_NATIVE_INT8,
                     static_cast<hsize_t>(kTokenChunk));
    source_ids.create(group.get(), name, kSourceIdsName, H5T_STD_I32LE, H5T_NATIVE_INT32, kIndexChunk);
    offsets.pending.push_back(0);
  }

  void flush(bool final) {
    tokens.flush(static_cast<hsize_t>(kTokenChunk), final);
    offsets.flush(kIndexChunk, final);
    prompt_lengths.flush(kIndexChunk, final);
    loss_mask.flush(static_cast<hsize_t>(kTokenChunk), final);
    source_ids.flush(kIndexChunk, final);
  }
};

struct Hdf5Writer::State {
  h5::Handle file;
  std::unique_ptr<Split> train;
  std::unique_ptr<Split> eval;
  bool finished = false;

  // Closes datasets, groups, then the file; returns false when any close failed.
  bool close_all() {
    bool ok = true;
    for (Split* s : {train.get(), eval.get()}) {
      if (s == nullptr) continue;
      ok &= s->tokens.dataset.reset() >= 0;
      ok &= s->offsets.dataset.reset() >= 0;
      ok &= s->prompt_lengths.dataset.reset() >= 0;
      ok &= s->loss_mask.dataset.reset() >= 0;
      ok &= s->source_ids.dataset.reset() >= 0;
      ok &= s->group.reset() >= 0;
    }
    ok &= file.reset() >= 0;
    return ok;
  }
};

Hdf5Writer::Hdf5Writer(const std::string& path)
    : path_(path), temp_path_(path + ".tmp-" + std::to_string(getpid())),
      state_(std::make_unique<State>()) {
  h5::silence_errors();
  // File format of HDF5 1.10, pinned (any HDF5 >= 1.10, and h5py built on it, reads it, also
  // when a newer library wrote it): its superblock, object headers (and so the attributes in
  // them), chunk indexes and heaps carry checksums, so a flipped byte in the metadata fails the
  // read too. The 1.8 default (version 0 superblock) has none.
  h5::Handle fapl(H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), "HDF5: file access properties"));
  H5_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110),
           "HDF5: file format version bounds");
  state_->file = h5::Handle(H5Fcreate(temp_path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!state_->file.valid()) {
    h5::throw_error(str("--output: cannot create ", temp_path_,
                        "; check that the folder exists and is writable"), __FILE__, __LINE__);
  }
  try {
    state_->train = std::make_unique<Split>(state_->file.get(), kTrainGroup);
    state_->eval = std::make_unique<Split>(state_->file.get(), kEvalGroup);
  } catch (...) {
    state_->close_all();
    std::remove(temp_path_.c_str());
    throw;
  }
}

Hdf5Writer::~Hdf5Writer() {
  if (state_->finished) return;
  state_->close_all();
  std::remove(temp_path_.c_str());  // nothing half-written survives
}

void Hdf5Writer::append(bool eval, std::span<const int32_t> ids, int32_t prompt_length,
                        std::span<const int8_t> loss_mask, int32_t source) {
  DTUNE_CHECK(source >= 0, "internal: source index ", source);
  DTUNE_CHECK(prompt_length >= 0 && static_cast<size_t>(prompt_length) <= ids.size(),
              "internal: prompt length ", prompt_length, " outside a row of ", ids.size(),
              " tokens");
  Split& s = eval ? *state_->eval : *state_->train;
  if (loss_mask.empty()) {
    s.loss_mask.pending.resize(s.loss_mask.pending.size() + static_cast<size_t>(prompt_length), 0);
    s.loss_mask.pending.resize(s.loss_mask.pending.size() + ids.size() - static_cast<size_t>(prompt_length), 1);
  } else {
    DTUNE_CHECK(loss_mask.size() == ids.size(), "internal: loss mask of ", loss_mask.size(),
                " entries for a row of ", ids.size(), " tokens");
    s.loss_mask.pending.insert(s.loss_mask.pending.end(), loss_mask.begin(), loss_mask.end());
  }
  s.tokens.pending.insert(s.tokens.pending.end(), ids.begin(), ids.end());
  s.offsets.pending.push_back(s.tokens.size());
  s.prompt_lengths.pending.push_back(prompt_length);
  s.source_ids.pending.push_back(source);
  ++s.rows;
  s.flush(false);
}

int64_t Hdf5Writer::num_rows(bool eval) const { return (eval ? state_->eval : state_->train)->rows; }

int64_t Hdf5Writer::num_tokens(bool eval) const {
  return (eval ? state_->eval : state_->train)->tokens.size();
}

void Hdf5Writer::finish(PretokenizedInfo info) {
  DTUNE_CHECK(!state_->finished, "internal: Hdf5Writer::finish called twice");
  state_->train->flush(true);
  state_->eval->flush(true);
  info.num_train_rows = state_->train->rows;
  info.num_eval_rows = state_->eval->rows;
  const hid_t root = state_->file.get();
  h5::write_attr(root, "format_version", info.format_version);
  h5::write_attr(root, "dtune_version", info.dtune_version);
  h5::write_attr(root, "tokenizer_path", info.tokenizer_path);
  h5::write_attr(root, "tokenizer_sha256", info.tokenizer_sha256);
  h5::write_attr(root, "vocab_size", info.vocab_size);
  h5::write_attr(root, "bos_id", info.bos_id);
  h5::write_attr(root, "eos_id", info.eos_id);
  h5::write_attr(root, "pad_id", info.pad_id);
  h5::write_attr(root, "template_name", info.template_name);
  h5::write_attr(root, "template_text", info.template_text);
  h5::write_attr(root, "add_bos", info.add_bos);
  h5::write_attr(root, "source_path", info.source_path);
  h5::write_attr(root, "source_sha256", info.source_sha256);
  if (!info.sources.empty()) h5::write_attr(root, "sources", info.sources);
  h5::write_attr(root, "num_train_rows", info.num_train_rows);
  h5::write_attr(root, "num_eval_rows", info.num_eval_rows);
  h5::write_attr(root, "num_skipped_rows", info.num_skipped_rows);
  h5::write_attr(root, "num_truncated_rows", info.num_truncated_rows);
  h5::write_attr(root, "num_dropped_rows", info.num_dropped_rows);
  h5::write_attr(root, "max_length", info.max_length);
  h5::write_attr(root, "seed", info.seed);
  h5::write_attr(root, "eval_fraction", info.eval_fraction);
  h5::write_attr(root, kStringAttributesSha256, string_attributes_sha256(info));
  H5_CHECK(H5Fflush(root, H5F_SCOPE_GLOBAL), "HDF5: flushing ", temp_path_, " (disk full?)");
  if (!state_->close_all()) {
    h5::throw_error(str("HDF5: closing ", temp_path_, " failed (disk full?)"), __FILE__, __LINE__);
  }
  publish_file(temp_path_, path_);  // fsync, rename, fsync the folder (throws naming the path)
  state_->finished = true;
}

}  // namespace dtune
