// libFuzzer target: arbitrary bytes as a `dtune train --config` INI file -> load_config, then
// validate. A file that loads must print (format_config, what checkpoints store as config.ini)
// to a file that loads back to the same config; any input must either load or give dtune::Error
// naming the file, never a crash or another exception. Build/run: scripts/fuzz.sh.
#include <cstdint>
#include <string>
#include <string_view>

#include "dtune/config/config.h"
#include "dtune/config/config_parser.h"
#include "dtune/core/error.h"
#include "fuzz_support.h"

using dtune::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      dtune::fuzz::write_scratch_file("run.ini", std::string_view(reinterpret_cast<const char*>(data), size));
  dtune::Config config;
  try {
    config = dtune::load_config(path, {});
  } catch (const dtune::Error& e) {
    check(std::string(e.what()).find(path) != std::string::npos || std::string(e.what()).find("option ") == 0,
          "a config error names the file or the option");
    return 0;
  }
  const std::string printed = dtune::format_config(config);
  const std::string again = dtune::fuzz::write_scratch_file("printed.ini", printed);
  try {
    check(dtune::format_config(dtune::load_config(again, {})) == printed, "format_config round trip");
  } catch (const dtune::Error& e) {
    std::fprintf(stderr, "%s\n--- printed config:\n%s\n", e.what(), printed.c_str());
    check(false, "the printed config does not load");
  }
  try {
    dtune::validate(config);
  } catch (const dtune::Error&) {
    // Values out of range: validate names the option; not a crash.
  }
  return 0;
}
