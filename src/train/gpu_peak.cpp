// The SKU table behind known_gpu_peak (see gpu_peak.h). Every value is the dense fp16/bf16
// tensor-core peak, half of the "with sparsity" figure where the datasheet gives only that:
//   H100 SXM 989, H100 PCIe 756, H100 NVL 835: NVIDIA H100 Tensor Core GPU datasheet
//     (nvidia.com/en-us/data-center/h100, BF16 1,979 / 1,513 / 1,671 TFLOPS with sparsity)
//   H200 SXM 989, H200 NVL 835: NVIDIA H200 datasheet (nvidia.com/en-us/data-center/h200,
//     BF16 1,979 / 1,671 TFLOPS with sparsity)
//   GH200 989: NVIDIA GH200 Grace Hopper Superchip datasheet (FP16/BF16 1,979 TFLOPS with sparsity)
//   A100 312 (SXM4 and PCIe, 40 and 80 GB): NVIDIA A100 datasheet (BF16 312 / 624 with sparsity)
//   L40S 362: NVIDIA L40S datasheet (BF16 362.05 / 733 with sparsity)
//   L4 121: NVIDIA L4 datasheet (BF16 121 / 242 with sparsity)
//   A10 125: NVIDIA A10 datasheet (BF16 125 / 250 with sparsity)
#include "dtune/train/gpu_peak.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <sstream>
#include <vector>

#include "dtune/core/error.h"
#include "dtune/core/log.h"

namespace dtune {
namespace {

struct Sku {
  const char* name;
  double tflops;
  std::initializer_list<const char*> all_of;   // every one of these words
  std::initializer_list<const char*> any_of;   // and one of these (empty: no condition)
  std::initializer_list<const char*> none_of;  // and none of these
};

// First match wins: the specific variants before the general ones.
const Sku kSkus[] = {
    {"GH200", 989, {"GH200"}, {}, {}},
    {"H200 NVL", 835, {"H200", "NVL"}, {}, {}},
    {"H200 SXM", 989, {"H200"}, {}, {"PCIE", "NVL"}},
    {"H100 NVL", 835, {"H100", "NVL"}, {}, {}},
    {"H100 PCIe", 756, {"H100", "PCIE"}, {}, {}},
    {"H100 SXM", 989, {"H100"}, {"SXM", "SXM5", "HBM3", "HBM3E"}, {"PCIE", "NVL"}},
    {"A100", 312, {"A100"}, {}, {}},
    {"L40S", 362, {"L40S"}, {}, {}},
    {"L4", 121, {"L4"}, {}, {}},
    {"A10", 125, {"A10"}, {}, {}},
};

std::vector<std::string> words_of(const std::string& name) {
  std::string s = name;
  for (char& c : s) c = (c == '-' || c == '_') ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

GpuPeak known_gpu_peak(const std::string& device_name) {
  const std::vector<std::string> words = words_of(device_name);
  auto has = [&](const char* w) { return std::find(words.begin(), words.end(), w) != words.end(); };
  for (const Sku& sku : kSkus) {
    const bool all = std::all_of(sku.all_of.begin(), sku.all_of.end(), has);
    const bool any = sku.any_of.size() == 0 || std::any_of(sku.any_of.begin(), sku.any_of.end(), has);
    const bool none = std::none_of(sku.none_of.begin(), sku.none_of.end(), has);
    if (all && any && none) return {sku.name, sku.tflops};
  }
  return {};
}

double resolve_peak_tflops(double configured, const std::string& device_name) {
  if (configured > 0) {
    log::info(str("MFU against train.peak_tflops = ", configured, " TFLOP/s"));
    return configured;
  }
  if (device_name.empty()) return 0.0;
  const GpuPeak peak = known_gpu_peak(device_name);
  if (peak.tflops > 0) {
    log::info(str("MFU against ", peak.tflops, " TFLOP/s, the dense bf16/fp16 peak of the ", peak.sku, " (device '",
                  device_name, "'; set train.peak_tflops if that is not this GPU)"));
  } else {
    log::info(str("no known peak for device '", device_name, "': no mfu in metrics; set train.peak_tflops to "
                  "its dense bf16/fp16 TFLOP/s to get one"));
  }
  return peak.tflops;
}

}  // namespace dtune
