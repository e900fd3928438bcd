// The one parser of a device option: `train.device` (config) and `dtune generate --device`.
// libtorch-free, so config/ validates with it; dist::select_device (dist/device.h) turns a
// request into the device a rank computes on.
#pragma once

#include <string>

namespace dtune {

struct DeviceRequest {
  enum class Kind { kAuto, kCpu, kCuda };
  Kind kind = Kind::kAuto;  // auto: a GPU if one is visible, else the CPU
  int index = -1;           // cuda:N: GPU N; -1: the caller picks (node-local rank % GPUs)
};

// value: auto | cpu | cuda, and cuda:N (N >= 0) where allow_index. Throws dtune::Error
// "option OPTION must be one of auto | cpu | cuda[:N], got 'VALUE'" otherwise.
DeviceRequest parse_device_request(const std::string& value, const std::string& option, bool allow_index);

}  // namespace dtune
