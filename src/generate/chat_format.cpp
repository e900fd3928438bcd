// Chat and training prompt forms (see chat_format.h). The chat form renders the model's
// template with data/chat_template.h where dtune knows it (by sha256, oracle-tested); other
// templates are recognised by their literal markers, not executed: dtune has no Jinja engine,
// and the one-user-turn output of the two marker styles is fully described by ChatFormat.
#include "dtune/generate/chat_format.h"

#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/data/chat_template.h"
#include "dtune/data/prompt_template.h"

namespace dtune {
namespace {

constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";
constexpr std::string_view kR1User = "<\xef\xbd\x9cUser\xef\xbd\x9c>";            // <｜User｜>
constexpr std::string_view kR1Assistant = "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>";  // <｜Assistant｜>
constexpr std::string_view kR1Bos =
    "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";  // <｜begin▁of▁sentence｜>

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Length of a newline at text[pos] as a template writes it: a real '\n' (1) or the Jinja escape
// "\n" (2); 0 when there is none.
size_t newline_at(std::string_view text, size_t pos) {
  if (pos < text.size() && text[pos] == '\n') return 1;
  if (pos + 1 < text.size() && text[pos] == '\\' && text[pos + 1] == 'n') return 2;
  return 0;
}

// Jinja string-literal escapes that appear in system messages: \n, \t, \', \", \\.
std::string unescape_jinja(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
  }
  return out;
}

// The default system turn of a ChatML template: the first literal
// '<|im_start|>system\n TEXT <|im_end|>' whose TEXT holds no template code (quotes, braces,
// '+'), i.e. the branch taken when the caller gave no system message. "" when there is none
// (Qwen3 inserts no system turn).
std::string find_default_system_message(std::string_view tpl) {
  const std::string marker = std::string(kImStart) + "system";
  for (size_t at = tpl.find(marker); at != std::string_view::npos; at = tpl.find(marker, at + 1)) {
    const size_t nl = newline_at(tpl, at + marker.size());
    if (nl == 0) continue;
    const size_t begin = at + marker.size() + nl;
    const size_t end = tpl.find(kImEnd, begin);
    if (end == std::string_view::npos) break;
    const std::string_view text = tpl.substr(begin, end - begin);
    if (text.find_first_of("'\"{}+") != std::string_view::npos) continue;
    return unescape_jinja(text);
  }
  return "";
}

// tokenizer_config.json stores special tokens as "text" or {"content": "text", ...}.
std::string token_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string())
    return value["content"].get<std::string>();
  return "";
}

}  // namespace

ChatFormat detect_chat_format(const std::string& tpl, const std::string& bos_token) {
  ChatFormat f;
  if (contains(tpl, kR1User) && contains(tpl, kR1Assistant)) {
    f.style = ChatStyle::kDeepSeekR1;
    // The template emits {{bos_token}} (or, rarely, the BOS text itself) before the turns.
    if (contains(tpl, "bos_token")) f.bos_token = bos_token;
    else if (contains(tpl, kR1Bos)) f.bos_token = std::string(kR1Bos);
    const std::string tag = std::string(kR1Assistant) + "<think>";
    const size_t at = tpl.find(tag);
    if (at != std::string::npos && newline_at(tpl, at + tag.size()) > 0) f.assistant_prefix = "<think>\n";
    return f;
  }
  if (contains(tpl, kImStart) && contains(tpl, kImEnd)) {
    f.style = ChatStyle::kChatML;
    f.system_message = find_default_system_message(tpl);
    return f;
  }
  throw Error(str("chat template not recognised: dtune --chat knows the ChatML form "
                  "(<|im_start|>user ...) and the DeepSeek-R1 form (<\xef\xbd\x9cUser\xef\xbd\x9c>...); "
                  "pass --no-chat and format the prompt yourself (template starts with: \"",
                  tpl.substr(0, 80), "\")"));
}

ChatFormat load_chat_format(const std::string& model_dir) {
  const std::string path = model_dir + "/tokenizer_config.json";
  std::ifstream in(path);
  DTUNE_CHECK(in, "cannot open ", path, " for the chat template; pass --no-chat to use the prompt as is");
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(str(path, ": invalid JSON (", e.what(), ")"));
  }
  DTUNE_CHECK(cfg.contains("chat_template") && cfg["chat_template"].is_string(), path,
              ": no \"chat_template\" string; this model has no chat format, pass --no-chat");
  const std::string bos = cfg.contains("bos_token") ? token_text(cfg["bos_token"]) : "";
  try {
    return detect_chat_format(cfg["chat_template"].get<std::string>(), bos);
  } catch (const Error& e) {
    throw Error(str(path, ": ", e.what()));
  }
}

std::string format_chat_prompt(const ChatFormat& f, std::string_view prompt) {
  std::string out;
  if (f.style == ChatStyle::kDeepSeekR1) {
    out = f.bos_token;
    out.append(kR1User).append(prompt).append(kR1Assistant);
  } else {
    if (!f.system_message.empty())
      out.append(kImStart).append("system\n").append(f.system_message).append(kImEnd).append("\n");
    out.append(kImStart).append("user\n").append(prompt).append(kImEnd).append("\n");
    out.append(kImStart).append("assistant\n");
  }
  return out + f.assistant_prefix;
}

std::string format_preset_prompt(const std::string& preset, std::string_view prompt) {
  const PromptTemplate t = PromptTemplate::preset(preset);
  // The completion's fields get a marker that must not reach the prompt part.
  static constexpr std::string_view kCompletionOnly = "\x01";
  std::vector<std::string> values;
  for (const std::string& f : t.fields())
    values.emplace_back(f == "Question" ? std::string(prompt) : std::string(kCompletionOnly));
  std::string prompt_part, completion;
  t.render(values, prompt_part, completion);
  DTUNE_CHECK(prompt_part.find(kCompletionOnly) == std::string::npos || prompt.find(kCompletionOnly) != std::string::npos,
              "template preset '", preset, "' has a field other than {Question} before {@completion}: it cannot ",
              "form a generation prompt from one question");
  return prompt_part;
}

std::string format_recipe_prompt(std::string_view prompt) { return format_preset_prompt("recipe", prompt); }

std::string format_r1_chat_prompt(std::string_view prompt) { return format_preset_prompt("r1-chat", prompt); }

FormattedPrompt format_model_chat_prompt(const std::string& model_dir, std::string_view prompt,
                                         std::string_view system) {
  std::string native_error;
  try {
    const ChatTemplate chat = ChatTemplate::load(model_dir);
    std::vector<ChatMessage> messages;
    if (!system.empty()) messages.push_back({"system", std::string(system)});
    messages.push_back({"user", std::string(prompt)});
    return {chat.render(messages, messages.size()).text + chat.generation_prompt(), false};
  } catch (const Error& e) {
    native_error = e.what();
  }
  // Not a template dtune renders natively: the ChatML / DeepSeek-R1 markers, one user turn.
  DTUNE_CHECK(system.empty(), "a system message needs a chat template dtune renders natively; ", native_error);
  try {
    return {format_chat_prompt(load_chat_format(model_dir), prompt), false};
  } catch (const Error& e) {
    throw Error(str(e.what(), "\n(", native_error, ")"));
  }
}

FormattedPrompt format_prompt(std::string_view form, std::string_view prompt,
                              const std::string& model_dir, std::string_view system) {
  if (form == "chat") return format_model_chat_prompt(model_dir, prompt, system);
  DTUNE_CHECK(system.empty(), "a system message applies to the chat form only, not to '", form, "'");
  if (form == "r1-chat") return {format_r1_chat_prompt(prompt), false};
  if (form == "recipe") return {format_recipe_prompt(prompt), true};
  if (form == "none") return {std::string(prompt), true};
  throw Error(str("unknown prompt form '", form, "': use chat | recipe | r1-chat | none"));
}

}  // namespace dtune
