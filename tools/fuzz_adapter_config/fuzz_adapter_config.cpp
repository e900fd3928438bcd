// libFuzzer target: arbitrary bytes as adapter_config.json -> parse_adapter_config (what
// load_peft_adapter applies). An accepted config has r > 0 and sorted target_modules, and writing
// it back (adapter_config_json) and parsing again gives the same config; any other input must give
// dtune::Error, never a crash or another exception. Build/run: scripts/fuzz.sh.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/io/adapter_config.h"
#include "fuzz_support.h"

using dtune::fuzz::check;

namespace {

bool same(const dtune::AdapterConfig& a, const dtune::AdapterConfig& b) {
  return a.r == b.r && a.alpha == b.alpha && a.dropout == b.dropout && a.target_modules == b.target_modules &&
         a.use_rslora == b.use_rslora && a.base_model_name_or_path == b.base_model_name_or_path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // As io_detail::read_json_file parses a file's bytes (a syntax error is a dtune::Error there).
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    const dtune::AdapterConfig c = dtune::parse_adapter_config(j, "fuzz/adapter_config.json");
    check(c.r > 0, "r > 0");
    check(std::is_sorted(c.target_modules.begin(), c.target_modules.end()), "target_modules sorted");
    const nlohmann::json written = dtune::adapter_config_json(c);
    const std::string text = written.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    dtune::AdapterConfig back;
    try {
      back = dtune::parse_adapter_config(nlohmann::json::parse(text), "written/adapter_config.json");
    } catch (const dtune::Error&) {
      check(false, "a written config is refused");
    }
    // An alpha or dropout that overflowed to inf is written as null and read back as the default.
    if (std::isfinite(c.alpha) && std::isfinite(c.dropout)) check(same(c, back), "write then parse round trip");
  } catch (const dtune::Error&) {
    // Rejected input: the expected outcome for almost all fuzz inputs.
  }
  return 0;
}
