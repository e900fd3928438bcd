// libFuzzer target: arbitrary bytes as a model folder's tokenizer_config.json -> load_chat_format
// (chat template detection, what `dtune generate --chat` and the trainer's generation test use)
// -> format_chat_prompt. A recognised template must give a prompt that holds the question between
// the style's user and assistant tags; any other input must give dtune::Error, never a crash or
// another exception. Build/run: scripts/fuzz.sh.
#include <cstdint>
#include <string>
#include <string_view>

#include "dtune/core/error.h"
#include "dtune/generate/chat_format.h"
#include "fuzz_support.h"

using dtune::fuzz::check;

namespace {

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, std::string_view p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dtune::fuzz::write_scratch_file("tokenizer_config.json", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const dtune::ChatFormat f = dtune::load_chat_format(dtune::fuzz::scratch_dir());
    constexpr std::string_view kQuestion = "What causes pleuritic chest pain?";
    const std::string p = dtune::format_chat_prompt(f, kQuestion);
    check(p.find(kQuestion) != std::string::npos, "the question is in the prompt");
    check(ends_with(p, f.assistant_prefix), "the prompt ends with the assistant prefix");
    const std::string body = p.substr(0, p.size() - f.assistant_prefix.size());
    if (f.style == dtune::ChatStyle::kChatML) {
      check(ends_with(body, "<|im_start|>assistant\n"), "ChatML: ends with the assistant tag");
      check(body.find(std::string("<|im_start|>user\n") + std::string(kQuestion) + "<|im_end|>\n") != std::string::npos,
            "ChatML: the user turn");
      check(f.system_message.empty() || starts_with(body, "<|im_start|>system\n"), "ChatML: the system turn first");
    } else {
      check(starts_with(body, f.bos_token), "R1: BOS first");
      check(ends_with(body, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"), "R1: ends with the assistant tag");
    }
  } catch (const dtune::Error&) {
    // Rejected input: the expected outcome for almost all fuzz inputs.
  }
  return 0;
}
