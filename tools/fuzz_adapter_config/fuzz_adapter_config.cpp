// libFuzzer target: arbitrary bytes as a PEFT adapter folder's adapter_config.json ->
// read_adapter_config (io/adapter_config.h, what load_peft_adapter reads the file with), then
// each module's rank, alpha and LoRA scale as the loader derives them. A config that reads must
// satisfy what the loader relies on; any other input must give dtune::Error, never a crash, a
// sanitizer report or another exception. Build/run: scripts/fuzz.sh (tools/CMakeLists.txt).
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "dtune/core/error.h"
#include "dtune/io/adapter_config.h"
#include "dtune/lora/lora_options.h"
#include "fuzz_support.h"

using dtune::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = dtune::fuzz::write_scratch_file(
      "adapter_config.json", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const dtune::AdapterConfigFile f = dtune::read_adapter_config(path);
    check(f.config.r > 0, "r positive");
    check(f.config.target_modules.empty(), "target_modules left to the tensors");
    // Module names as a Llama's adapter holds them (the loader asks for every adapted module).
    for (const char* module : {"base_model.model.model.layers.0.self_attn.q_proj",
                               "base_model.model.model.layers.17.mlp.down_proj", "model.layers.3.self_attn.v_proj"}) {
      const dtune::ModuleRankAlpha ra = dtune::module_rank_alpha(f, module, path);
      check(ra.r >= 1, "module rank positive");
      check(std::isfinite(ra.alpha), "module alpha finite");
      const double scale = dtune::lora_scale(ra.alpha, ra.r, f.config.use_rslora);
      check(!std::isnan(scale), "scale not NaN");
    }
  } catch (const dtune::Error&) {
    // Rejected input: the expected outcome for most fuzz inputs.
  }
  return 0;
}
