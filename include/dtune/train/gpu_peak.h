// The dense fp16/bf16 tensor-core peak of known GPUs, by exact SKU, for the MFU that
// metrics.jsonl reports (docs/TRAINING.md).
#pragma once

#include <string>

namespace dtune {

struct GpuPeak {
  std::string sku;    // the table's name for the matched product ("H100 PCIe"); empty when unknown
  double tflops = 0;  // dense (no sparsity) fp16/bf16 tensor TFLOP/s from NVIDIA's datasheet; 0 = unknown
};

// Looks device_name up (as CUDA names the device: cudaDeviceProp::name, e.g. "NVIDIA H100 80GB
// HBM3", "NVIDIA H100 PCIe", "NVIDIA H200 NVL", "NVIDIA A100-SXM4-80GB"). Matching is by whole
// words (case-insensitive; '-' and '_' separate words), so "A100" never matches "A1000"; a name
// that does not say which variant it is (SXM, PCIe, NVL) is unknown rather than guessed.
GpuPeak known_gpu_peak(const std::string& device_name);

// The peak MFU is measured against: configured (train.peak_tflops) when > 0, else
// known_gpu_peak(device_name); 0 (no mfu in metrics) when neither applies or device_name is
// empty (CPU). Logs on rank 0 which peak it took and from what name.
double resolve_peak_tflops(double configured, const std::string& device_name);

}  // namespace dtune
