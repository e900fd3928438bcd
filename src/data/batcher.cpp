// Padded and packed micro-batches over a rank's shard; see include/dtune/data/batcher.h.
#include "dtune/data/batcher.h"

#include <algorithm>
#include <numeric>

#include "dtune/core/error.h"

namespace dtune {

Batcher::Batcher(const Hdf5Dataset& data, const ShardSampler& sampler, BatcherOptions options)
    : data_(data), sampler_(sampler), options_(options), state_(sampler.start_state(0)) {
  DTUNE_CHECK(options_.batch_size >= 1, "--batch-size must be >= 1, got ", options_.batch_size);
  DTUNE_CHECK(!options_.pack || options_.pack_length >= 2, "--pack-length must be >= 2 when ",
              "packing, got ", options_.pack_length);
  DTUNE_CHECK(sampler.num_rows() == data.num_rows(), "internal: sampler made for ",
              sampler.num_rows(), " rows, dataset has ", data.num_rows());
  load_order();
}

void Batcher::restore(const SamplerState& state) {
  sampler_.check_state(state, read_rule());
  const bool same_plan = state.epoch == state_.epoch && state.reshards.size() == state_.reshards.size();
  state_ = state;
  if (!same_plan || !state.reshards.empty()) load_order();
}

void Batcher::load_order() { order_ = sampler_.rows_for_epoch(state_.epoch, state_.reshards, read_rule()); }

ReadRule Batcher::read_rule() const {
  return [this](const std::vector<int64_t>& share, int64_t position, std::vector<bool>& reached) {
    mark_read(share, position, reached);
  };
}

void Batcher::mark_read(const std::vector<int64_t>& share, int64_t position, std::vector<bool>& reached) const {
  if (options_.pack || options_.group_window <= 1) {
    std::fill(reached.begin(), reached.begin() + position, true);
    return;
  }
  // next()'s window: whole windows before it are read; in it, the first rows by length.
  const int64_t n = static_cast<int64_t>(share.size());
  const int64_t window = options_.group_window * options_.batch_size;
  const int64_t start = position / window * window;
  std::fill(reached.begin(), reached.begin() + start, true);
  std::vector<int64_t> index(static_cast<size_t>(std::min(n, start + window) - start));
  std::iota(index.begin(), index.end(), start);
  std::stable_sort(index.begin(), index.end(), [&](int64_t x, int64_t y) {
    return data_.row_length(share[static_cast<size_t>(x)]) > data_.row_length(share[static_cast<size_t>(y)]);
  });
  for (int64_t i = 0; i < position - start; ++i) reached[static_cast<size_t>(index[static_cast<size_t>(i)])] = true;
}

int64_t Batcher::take_packed(int64_t position, const std::vector<int64_t>& order,
                             std::vector<std::vector<int64_t>>* sequences) const {
  const int64_t n = static_cast<int64_t>(order.size());
  int64_t used_sequences = 0;
  int64_t fill = 0;  // tokens in the open sequence
  if (sequences != nullptr) sequences->clear();
  while (position < n) {
    const int64_t len = std::min(data_.row_length(order[position]), options_.pack_length);
    if (fill == 0 || fill + len > options_.pack_length) {
      if (used_sequences == options_.batch_size) break;  // batch full
      ++used_sequences;
      fill = 0;
      if (sequences != nullptr) sequences->emplace_back();
    }
    fill += len;
    if (sequences != nullptr) sequences->back().push_back(order[position]);
    ++position;
  }
  return position;
}

int64_t Batcher::batches_in_epoch(int64_t epoch) const {
  const bool current = epoch == state_.epoch;
  const int64_t n = current ? static_cast<int64_t>(order_.size()) : sampler_.rows_per_rank();
  if (!options_.pack) return (n + options_.batch_size - 1) / options_.batch_size;
  std::vector<int64_t> other;
  if (!current) other = sampler_.rows_for_epoch(epoch);
  const std::vector<int64_t>& order = current ? order_ : other;
  int64_t batches = 0;
  for (int64_t pos = 0; pos < n; ++batches) pos = take_packed(pos, order, nullptr);
  return batches;
}

bool Batcher::next(Batch& batch) {
  const int64_t n = static_cast<int64_t>(order_.size());
  if (state_.position >= n) {
    state_.epoch += 1;
    state_.position = 0;
    state_.reshards.clear();
    load_order();
    return false;
  }
  if (options_.pack) {
    std::vector<std::vector<int64_t>> sequences;
    const int64_t next_pos = take_packed(state_.position, order_, &sequences);
    fill_packed(sequences, batch);
    state_.position = next_pos;
    return true;
  }
  const int64_t b = options_.batch_size;
  std::vector<int64_t> rows;
  if (options_.group_window <= 1) {
    const int64_t end = std::min(n, state_.position + b);
    rows.assign(order_.begin() + state_.position, order_.begin() + end);
  } else {
    // The window is re-derived from the position, so restore() mid-window is exact.
    const int64_t window = options_.group_window * b;
    const int64_t start = state_.position / window * window;
    std::vector<int64_t> sorted(order_.begin() + start,
                                order_.begin() + std::min(n, start + window));
    std::stable_sort(sorted.begin(), sorted.end(), [&](int64_t x, int64_t y) {
      return data_.row_length(x) > data_.row_length(y);
    });
    const int64_t from = state_.position - start;
    const int64_t to = std::min<int64_t>(static_cast<int64_t>(sorted.size()), from + b);
    rows.assign(sorted.begin() + from, sorted.begin() + to);
  }
  fill_padded(rows, batch);
  state_.position += static_cast<int64_t>(rows.size());
  return true;
}

Batch make_empty_batch() {
  Batch batch;
  batch.cu_seqlens.assign(1, 0);
  return batch;
}

namespace {

void reset_batch(Batch& batch, int64_t b, int64_t t, int32_t pad_id) {
  const size_t size = static_cast<size_t>(b * t);
  batch.batch_size = b;
  batch.seq_len = t;
  batch.input_ids.assign(size, pad_id);
  batch.labels.assign(size, kIgnoreIndex);
  batch.attention_mask.assign(size, 0);
  batch.position_ids.assign(size, 0);
  batch.sequence_ids.assign(size, -1);
  batch.cu_seqlens.assign(1, 0);
  batch.max_segment_len = 0;
  batch.lengths.assign(static_cast<size_t>(b), 0);
  batch.rows.clear();
  batch.num_loss_tokens = 0;
}

void add_segment(Batch& batch, int64_t len) {
  if (len <= 0) return;
  batch.cu_seqlens.push_back(batch.cu_seqlens.back() + static_cast<int32_t>(len));
  batch.max_segment_len = std::max(batch.max_segment_len, static_cast<int32_t>(len));
}

}  // namespace

void Batcher::fill_padded(const std::vector<int64_t>& rows, Batch& batch) {
  int64_t t = 1;
  for (int64_t r : rows) t = std::max(t, data_.row_length(r));
  const int64_t b = static_cast<int64_t>(rows.size());
  reset_batch(batch, b, t, options_.pad_id);
  for (int64_t i = 0; i < b; ++i) {
    const int64_t r = rows[i];
    data_.read_row(r, row_buf_);
    data_.read_loss_mask(r, mask_buf_);
    const int64_t len = static_cast<int64_t>(row_buf_.size());
    const size_t base = static_cast<size_t>(i * t);
    for (int64_t k = 0; k < len; ++k) {
      batch.input_ids[base + k] = row_buf_[k];
      batch.attention_mask[base + k] = 1;
      batch.position_ids[base + k] = static_cast<int32_t>(k);
      batch.sequence_ids[base + k] = 0;
      if (k >= 1 && mask_buf_[k] != 0) {  // the first id has nothing before it to predict it
        batch.labels[base + k] = row_buf_[k];
        ++batch.num_loss_tokens;
      }
    }
    batch.lengths[i] = static_cast<int32_t>(len);
    batch.rows.push_back(r);
    add_segment(batch, len);
    add_segment(batch, t - len);
  }
}

void Batcher::fill_packed(const std::vector<std::vector<int64_t>>& sequences, Batch& batch) {
  const int64_t t = options_.pack_length;
  const int64_t b = static_cast<int64_t>(sequences.size());
  reset_batch(batch, b, t, options_.pad_id);
  for (int64_t s = 0; s < b; ++s) {
    const size_t base = static_cast<size_t>(s * t);
    int64_t fill = 0;
    int32_t seq_id = 0;
    for (int64_t r : sequences[s]) {
      data_.read_row(r, row_buf_);
      data_.read_loss_mask(r, mask_buf_);
      const int64_t len = std::min<int64_t>(static_cast<int64_t>(row_buf_.size()), t);
      for (int64_t k = 0; k < len; ++k) {
        const size_t at = base + static_cast<size_t>(fill + k);
        batch.input_ids[at] = row_buf_[k];
        batch.attention_mask[at] = 1;
        batch.position_ids[at] = static_cast<int32_t>(k);
        batch.sequence_ids[at] = seq_id;
        if (k >= 1 && mask_buf_[k] != 0) {
          batch.labels[at] = row_buf_[k];
          ++batch.num_loss_tokens;
        }
      }
      batch.rows.push_back(r);
      add_segment(batch, len);
      fill += len;
      ++seq_id;
    }
    batch.lengths[s] = static_cast<int32_t>(fill);
    add_segment(batch, t - fill);
  }
}

}  // namespace dtune
