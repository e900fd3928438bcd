// The kernel policy's names (see kernel_policy.h).
#include "dtune/kernels/kernel_policy.h"

#include "dtune/core/error.h"

namespace dtune {

const char* kernel_policy_values() { return "auto | reference (old name: sdpa)"; }

KernelPolicy kernel_policy_from_name(const std::string& value, const std::string& option) {
  if (value == "auto") return KernelPolicy::kDtune;
  if (value == "reference" || value == "sdpa") return KernelPolicy::kReference;
  throw Error(str("option ", option, " must be auto (dtune's kernels where they apply) or reference (libtorch's ",
                  "reference formulation for every kernel; sdpa is its old name), got '", value, "'"));
}

}  // namespace dtune
