// Tests src/train/gpu_peak.cpp: device names as CUDA reports them map to their exact SKU's dense
// bf16/fp16 peak (NVIDIA datasheets, cited in gpu_peak.cpp); names that do not say which variant
// they are, or that only contain a known name inside a word, are unknown.
#include "dtune/train/gpu_peak.h"

#include <boost/test/unit_test.hpp>

#include <string>

namespace dtune {
namespace {

BOOST_AUTO_TEST_CASE(device_names_map_to_their_sku) {
  struct Case {
    const char* name;
    const char* sku;
    double tflops;
  };
  for (const Case& c : {Case{"NVIDIA H100 80GB HBM3", "H100 SXM", 989}, Case{"NVIDIA H100 PCIe", "H100 PCIe", 756},
                        Case{"NVIDIA H100 NVL", "H100 NVL", 835}, Case{"NVIDIA H200", "H200 SXM", 989},
                        Case{"NVIDIA H200 NVL", "H200 NVL", 835}, Case{"NVIDIA GH200 480GB", "GH200", 989},
                        Case{"NVIDIA A100-SXM4-80GB", "A100", 312}, Case{"NVIDIA A100-PCIE-40GB", "A100", 312},
                        Case{"NVIDIA A100 80GB PCIe", "A100", 312}, Case{"NVIDIA L40S", "L40S", 362},
                        Case{"NVIDIA L4", "L4", 121}, Case{"NVIDIA A10", "A10", 125},
                        Case{"nvidia h100 pcie", "H100 PCIe", 756}}) {
    const GpuPeak p = known_gpu_peak(c.name);
    BOOST_TEST(p.sku == c.sku, c.name);
    BOOST_TEST(p.tflops == c.tflops, c.name);
  }
}

BOOST_AUTO_TEST_CASE(unknown_and_ambiguous_names_have_no_peak) {
  for (const char* name : {"NVIDIA H100", "NVIDIA RTX A1000", "NVIDIA A10G", "NVIDIA L40", "NVIDIA H800",
                           "Tesla V100-SXM2-16GB", "NVIDIA GeForce RTX 4090", ""}) {
    const GpuPeak p = known_gpu_peak(name);
    BOOST_TEST(p.tflops == 0.0, name);
    BOOST_TEST(p.sku.empty(), name);
  }
}

BOOST_AUTO_TEST_CASE(configured_peak_wins_and_cpu_has_none) {
  BOOST_TEST(resolve_peak_tflops(500.0, "NVIDIA H100 PCIe") == 500.0);
  BOOST_TEST(resolve_peak_tflops(0.0, "NVIDIA H100 PCIe") == 756.0);
  BOOST_TEST(resolve_peak_tflops(0.0, "") == 0.0);
  BOOST_TEST(resolve_peak_tflops(0.0, "NVIDIA H100") == 0.0);
}

}  // namespace
}  // namespace dtune
