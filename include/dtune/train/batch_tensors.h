// A data::Batch (plain vectors) as the tensors the decoder takes, on the training device.
#pragma once

#include <ATen/core/Tensor.h>

#include "dtune/model/attention_mask.h"
#include "dtune/model/lm_loss.h"

namespace dtune {

struct Batch;

struct BatchTensors {
  at::Tensor input_ids;      // (B, T) int64
  at::Tensor position_ids;   // (B, T) int64
  LossTargets loss_targets;  // positions with a label (-100 = none; HF's unshifted labels)
  AttentionMask mask;        // causal when nothing is padded or packed
  int64_t num_loss_tokens = 0;
  int64_t num_real_tokens = 0;  // non-padding tokens (for tokens/s and MFU)
};

// packed: the batch came from packing (block-diagonal attention by sequence id).
BatchTensors to_tensors(const Batch& batch, bool packed, c10::Device device);

}  // namespace dtune
