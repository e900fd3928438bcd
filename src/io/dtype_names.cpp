// The dtype names of dtune's options (see dtype_names.h).
#include "dtune/io/dtype_names.h"

#include "dtune/core/error.h"

namespace dtune {

c10::ScalarType dtype_from_name(const std::string& name, const std::string& option) {
  if (name == "fp32") return c10::kFloat;
  if (name == "bf16") return c10::kBFloat16;
  if (name == "fp16") return c10::kHalf;
  throw Error(str(option, " \"", name, "\" is not one of fp32, bf16, fp16"));
}

}  // namespace dtune
