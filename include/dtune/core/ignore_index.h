// The label of a position that takes no loss (PyTorch / Hugging Face convention), shared by the
// data layer (which writes labels) and the model (which skips them).
#pragma once

#include <cstdint>

namespace dtune {

inline constexpr int32_t kIgnoreIndex = -100;

}  // namespace dtune
