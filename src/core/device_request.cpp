// Device option values (see device_request.h).
#include "dtune/core/device_request.h"

#include <algorithm>
#include <cctype>

#include "dtune/core/error.h"

namespace dtune {

DeviceRequest parse_device_request(const std::string& value, const std::string& option, bool allow_index) {
  DeviceRequest r;
  if (value == "auto") return r;
  if (value == "cpu") {
    r.kind = DeviceRequest::Kind::kCpu;
    return r;
  }
  if (value == "cuda") {
    r.kind = DeviceRequest::Kind::kCuda;
    return r;
  }
  const std::string digits = value.rfind("cuda:", 0) == 0 ? value.substr(5) : std::string();
  const bool numeric = !digits.empty() && digits.size() <= 4 &&
                       std::all_of(digits.begin(), digits.end(), [](unsigned char ch) { return std::isdigit(ch) != 0; });
  if (allow_index && numeric) {
    r.kind = DeviceRequest::Kind::kCuda;
    r.index = std::stoi(digits);
    return r;
  }
  throw Error(str("option ", option, " must be one of auto | cpu | cuda", allow_index ? "[:N]" : "", ", got '",
                  value, "'"));
}

}  // namespace dtune
