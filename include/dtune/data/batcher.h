// Turns this rank's rows (ShardSampler order) into micro-batches: padded to the longest row,
// or packed into fixed-length sequences. Plain std::vector data; the trainer makes tensors.
#pragma once

#include "dtune/core/ignore_index.h"  // kIgnoreIndex

#include <cstdint>
#include <vector>

#include "dtune/data/hdf5_dataset.h"
#include "dtune/data/sampler.h"

namespace dtune {


// One micro-batch. Every (B, T) array is row-major, B = batch_size, T = seq_len. Labels are
// NOT shifted: labels[b, t] is the id at t when the loss is taken on it (the row's loss_mask,
// Hdf5Dataset::read_loss_mask), else kIgnoreIndex (prompt and other non-trained tokens,
// padding, and the first token of every row, which has nothing before it in its row to be
// predicted from). The trainer shifts (logits at t-1 predict labels at t).
struct Batch {
  int64_t batch_size = 0;                // B: rows (padded) or packed sequences
  int64_t seq_len = 0;                   // T: longest row (padded) or pack_length (packed)
  std::vector<int32_t> input_ids;        // (B, T); padding = BatcherOptions::pad_id
  std::vector<int32_t> labels;           // (B, T); see above
  std::vector<int32_t> attention_mask;   // (B, T); 1 = real token, 0 = padding
  std::vector<int32_t> position_ids;     // (B, T); 0.. within each row, restarting per packed
                                         // row; 0 on padding
  std::vector<int32_t> sequence_ids;     // (B, T); index of the row within its sequence
                                         // (always 0 when padded), -1 on padding. Attention
                                         // must stay within equal ids (block-diagonal).
  std::vector<int32_t> cu_seqlens;       // (n_segments + 1): start of each segment in the
                                         // flattened B*T layout, last = B*T. A segment is one
                                         // row or one run of padding (flash-attn varlen form).
  int32_t max_segment_len = 0;           // longest segment, for varlen kernels
  std::vector<int32_t> lengths;          // (B): real tokens per sequence (padded: row length)
  std::vector<int64_t> rows;             // dataset row indices in this batch, in order
  int64_t num_loss_tokens = 0;           // labels != kIgnoreIndex
};

struct BatcherOptions {
  int64_t batch_size = 1;    // rows (padded) or sequences (packed) per micro-batch
  bool pack = false;         // true: pack rows into sequences of pack_length tokens
  int64_t pack_length = 0;   // tokens per packed sequence; rows longer are cut to it
  // Padded mode: sort rows by length (longest first) within windows of this many micro-batches,
  // so a batch holds rows of similar length (less padding). 0 or 1: file/shuffle order.
  // Longest-first also surfaces an out-of-memory in the first steps.
  int64_t group_window = 0;
  int32_t pad_id = 0;        // id written into padding (masked; any valid id works)
};

// Micro-batches per epoch: padded (and grouped), ceil(rows_per_rank / batch_size) on every rank
// (the last batch may hold fewer rows). Packed, it depends on the rows' lengths, so ranks can
// differ. The rule that keeps every row once per epoch (docs/TRAINING.md "Epochs"): the epoch
// lasts the most micro-batches any rank has (an all-reduce max in the trainer); a rank whose rows are used up
// (rows_left() false) runs empty micro-batches (make_empty_batch) that carry no rows and no loss
// tokens but still join the step's collectives. No row is dropped to even out the ranks.
class Batcher {
 public:
  // data and sampler must outlive the batcher.
  Batcher(const Hdf5Dataset& data, const ShardSampler& sampler, BatcherOptions options);

  // Fills the next micro-batch of the current epoch; false at the end of the epoch, and the
  // state then moves to the start of the next epoch.
  bool next(Batch& batch);
  // Micro-batches this rank yields in epoch (from row lengths only; reads no tokens): exactly
  // the number of next() calls that return true from the start of that epoch. For the current
  // epoch, from the start of its current plan (state().reshards: after a resume on another
  // number of ranks, the rows that world had left).
  int64_t batches_in_epoch(int64_t epoch) const;
  // This rank's rows in the current epoch's plan (its share; after a reshard, of the rows left).
  int64_t rows_in_epoch() const { return static_cast<int64_t>(order_.size()); }
  // True while this rank has rows of the current epoch not yet returned by next().
  bool rows_left() const { return state_.position < static_cast<int64_t>(order_.size()); }

  // The position after the last batch returned; restore() with it continues exactly there.
  const SamplerState& state() const { return state_; }
  void restore(const SamplerState& state);

 private:
  // order_ for state_'s epoch and reshards.
  void load_order();
  // The ReadRule of this batcher: a prefix, or with group_window whole windows plus the first
  // rows of the current window sorted by length (as next() reads them).
  void mark_read(const std::vector<int64_t>& share, int64_t position, std::vector<bool>& reached) const;
  ReadRule read_rule() const;
  // Rows [position, next) of this epoch's order that form the next batch.
  int64_t take_packed(int64_t position, const std::vector<int64_t>& order,
                      std::vector<std::vector<int64_t>>* sequences) const;
  void fill_padded(const std::vector<int64_t>& rows, Batch& batch);
  void fill_packed(const std::vector<std::vector<int64_t>>& sequences, Batch& batch);

  const Hdf5Dataset& data_;
  const ShardSampler& sampler_;
  BatcherOptions options_;
  SamplerState state_;
  std::vector<int64_t> order_;  // this rank's rows for state_'s epoch (and reshards)
  std::vector<int32_t> row_buf_;
  std::vector<int8_t> mask_buf_;
};

// A micro-batch with no rows (B = 0, no loss tokens): what a rank whose rows of the epoch are
// used up runs while other ranks still have batches. The trainer skips its forward/backward; its
// zero gradients and zero token count still join the step's all-reduces.
Batch make_empty_batch();

}  // namespace dtune
