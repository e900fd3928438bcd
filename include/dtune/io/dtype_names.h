// dtune's names of the floating dtypes, as every option spells them (train.precision,
// `dtune generate --dtype`, `dtune merge --dtype`): fp32 | bf16 | fp16. The one parser.
#pragma once

#include <string>

#include <c10/core/ScalarType.h>

namespace dtune {

// "fp32" -> Float, "bf16" -> BFloat16, "fp16" -> Half. Throws dtune::Error naming option
// ("--dtype \"x\" is not one of fp32, bf16, fp16") for anything else.
c10::ScalarType dtype_from_name(const std::string& name, const std::string& option);

// The accepted names for help texts: "fp32 | bf16 | fp16".
constexpr const char* kDtypeNames = "fp32 | bf16 | fp16";

}  // namespace dtune
