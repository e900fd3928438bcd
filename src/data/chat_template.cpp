// Native rendering of the recognised chat templates; see include/dtune/data/chat_template.h.
// Each family below is the Jinja of its templates (quoted in the comments) for rows without
// tools, checked token for token against transformers by tests/data/chat_template_test.cpp.
#include "dtune/data/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dtune/core/error.h"
#include "dtune/core/sha256.h"

namespace dtune {
namespace {

// A template whose text (sha256) dtune renders, and how.
struct KnownTemplate {
  const char* sha256;
  ChatFamily family;
  const char* name;
  const char* default_system;  // kChatML only
  bool join_system;            // kDeepSeek only
  bool strip_reasoning;        // kDeepSeek only
  const char* generation_prompt;  // what add_generation_prompt=True appends
};

// add_generation_prompt's text per family ({{'<｜Assistant｜>'}}, {{'<|start_header_id|>assistant<|end_header_id|>\n\n'}},
// {{'<|im_start|>assistant\n'}}; Qwen3 without enable_thinking=false adds nothing more).
constexpr const char* kR1GenerationPrompt = "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>";
constexpr const char* kR1ThinkGenerationPrompt = "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\n";
constexpr const char* kLlamaGenerationPrompt = "<|start_header_id|>assistant<|end_header_id|>\n\n";
constexpr const char* kChatMLGenerationPrompt = "<|im_start|>assistant\n";

// Add a template here only with an oracle test row for it (tests/fixtures/chat_templates).
constexpr KnownTemplate kKnown[] = {
    {"b6835114b7303ddd78919a82e4d9f7d8c26ed0d7dfc36beeb12d524f6144eab1", ChatFamily::kDeepSeek,
     "DeepSeek-R1-Distill (first release)", "", false, true, kR1GenerationPrompt},
    {"56a1447ad31926fdc21fb07e56e5642bd9c850c4f52d8c8af7bbe5f079a84f5f", ChatFamily::kDeepSeek,
     "DeepSeek-R1-Distill (<think> generation prompt)", "", false, true, kR1ThinkGenerationPrompt},
    {"3b8267e54b67df6500f231ffa969955cc9d26b3444a291ced4eb96ca7d3ca1ea", ChatFamily::kDeepSeek,
     "DeepSeek-V3", "", true, false, kR1GenerationPrompt},
    {"ba03a121d097859c7b5b9cd03af99aafe95275210d2876f642ad9929a150f122", ChatFamily::kLlama3,
     "Llama 3 Instruct", "", false, false, kLlamaGenerationPrompt},
    {"e10ca381b1ccc5cf9db52e371f3b6651576caee0a630b452e2816b2d404d4b65", ChatFamily::kLlama31,
     "Llama 3.1 Instruct", "", false, false, kLlamaGenerationPrompt},
    {"87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5", ChatFamily::kQwen3,
     "Qwen3 (thinking)", "", false, false, kChatMLGenerationPrompt},
    {"872be49dbb638044ad01b60388f48d469ff2980e5f0dccdc22ec907db54d0788", ChatFamily::kChatML,
     "SmolLM2 Instruct (ChatML)", "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
     false, false, kChatMLGenerationPrompt},
    // Qwen2-Instruct: SmolLM2's template with Qwen's default system prompt.
    {"793202280c0910ab26bc6eb57c8212c2417324c6d8c4efd0d10d59092ab3e3eb", ChatFamily::kChatML,
     "Qwen2 Instruct (ChatML)", "You are a helpful assistant.", false, false, kChatMLGenerationPrompt},
    // Qwen2.5-Instruct: without tools (dtune passes none) its {%- else %} branch is ChatML with
    // a default system turn; system/user/assistant turns without tool_calls render as ChatML.
    {"cd8e9439f0570856fd70470bf8889ebd8b5d1107207f67a5efb46e342330527f", ChatFamily::kChatML,
     "Qwen2.5 Instruct (ChatML)", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", false,
     false, kChatMLGenerationPrompt},
};

constexpr std::string_view kR1User = "<\xef\xbd\x9cUser\xef\xbd\x9c>";                    // <｜User｜>
constexpr std::string_view kR1Assistant = "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>";          // <｜Assistant｜>
constexpr std::string_view kR1Eos = "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";
constexpr std::string_view kHeaderStart = "<|start_header_id|>";
constexpr std::string_view kHeaderEnd = "<|end_header_id|>\n\n";
constexpr std::string_view kEot = "<|eot_id|>";
constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";
constexpr std::string_view kThinkEnd = "</think>";
// Llama 3.1's system header when the caller passes no date_string (apply_chat_template doesn't).
constexpr std::string_view kLlama31Dates = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DTUNE_CHECK(in, path, ": cannot open it to read the chat template");
  std::ostringstream ss;
  ss << in.rdbuf();
  DTUNE_CHECK(!in.bad(), path, ": read error");
  return ss.str();
}

// tokenizer_config.json stores special tokens as "text" or {"content": "text", ...}.
std::string token_text(const nlohmann::json& cfg, const char* key) {
  if (!cfg.contains(key)) return "";
  const nlohmann::json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

// Length of the UTF-8 whitespace character (Python str.isspace) at s[i], 0 if none.
size_t space_at(const std::string& s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
  const auto byte = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
  if (c == 0xc2 && (byte(1) == 0x85 || byte(1) == 0xa0)) return 2;                 // U+0085, U+00A0
  if (c == 0xe1 && byte(1) == 0x9a && byte(2) == 0x80) return 3;                   // U+1680
  if (c == 0xe2 && byte(1) == 0x80 && ((byte(2) >= 0x80 && byte(2) <= 0x8a) ||     // U+2000..200A
                                       byte(2) == 0xa8 || byte(2) == 0xa9 ||       // U+2028, 2029
                                       byte(2) == 0xaf)) return 3;                 // U+202F
  if (c == 0xe2 && byte(1) == 0x81 && byte(2) == 0x9f) return 3;                   // U+205F
  if (c == 0xe3 && byte(1) == 0x80 && byte(2) == 0x80) return 3;                   // U+3000
  return 0;
}

// Start of the whitespace character that ends s[0:end), or end when there is none.
size_t space_before(const std::string& s, size_t end) {
  for (size_t len = 1; len <= 3 && len <= end; ++len) {
    if (space_at(s, end - len) == len) return end - len;
  }
  return end;
}

// Appends piece to out; when trained, records its bytes plus the end token as a loss span.
void append_turn(RenderedChat& out, const std::string& content, std::string_view end_token, bool trained) {
  const size_t begin = out.text.size();
  out.text += content;
  out.text += end_token;
  if (trained) out.loss_spans.emplace_back(begin, out.text.size());
}

// Python's s.lstrip(c) / s.rstrip(c) / s.strip(c) for one ASCII character c.
std::string lstrip_char(const std::string& s, char c) {
  const size_t b = s.find_first_not_of(c);
  return b == std::string::npos ? "" : s.substr(b);
}
std::string rstrip_char(const std::string& s, char c) {
  const size_t e = s.find_last_not_of(c);
  return e == std::string::npos ? "" : s.substr(0, e + 1);
}

}  // namespace

std::string python_strip(const std::string& text) {
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t n = space_at(text, begin);
    if (n == 0) break;
    begin += n;
  }
  size_t end = text.size();
  while (end > begin) {
    const size_t at = space_before(text, end);
    if (at == end) break;
    end = at;
  }
  return text.substr(begin, end - begin);
}

std::vector<std::string> ChatTemplate::known_names() {
  std::vector<std::string> names;
  for (const KnownTemplate& k : kKnown) names.emplace_back(k.name);
  return names;
}

ChatTemplate ChatTemplate::recognise(const std::string& text, const std::string& bos_token,
                                     const std::string& source) {
  const std::string digest = sha256_hex(text);
  for (const KnownTemplate& k : kKnown) {
    if (digest != k.sha256) continue;
    ChatTemplate t;
    t.family_ = k.family;
    t.name_ = k.name;
    t.sha256_ = digest;
    t.source_ = source;
    t.bos_token_ = bos_token;
    t.default_system_ = k.default_system;
    t.join_system_ = k.join_system;
    t.strip_reasoning_ = k.strip_reasoning;
    t.generation_prompt_ = k.generation_prompt;
    return t;
  }
  std::string known;
  for (const KnownTemplate& k : kKnown) known += str("\n  ", k.name);
  throw Error(str(source, ": the chat_template (sha256 ", digest.substr(0, 16), "..., starts \"",
                  text.substr(0, 60), "\") is not one dtune renders. dtune renders these templates ",
                  "natively, proven equal to transformers' apply_chat_template:", known,
                  "\nuse the model's original tokenizer_config.json (--chat-template FILE), or format the ",
                  "rows yourself with --template-file"));
}

ChatTemplate ChatTemplate::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool is_dir = fs::is_directory(path, ec);
  const std::string config_path = is_dir ? (fs::path(path) / "tokenizer_config.json").string() : path;
  std::string jinja_path;
  if (is_dir && fs::exists(fs::path(path) / "chat_template.jinja", ec)) {
    jinja_path = (fs::path(path) / "chat_template.jinja").string();
  } else if (!is_dir && fs::path(path).extension() == ".jinja") {
    jinja_path = path;
  }
  nlohmann::json cfg = nlohmann::json::object();
  const std::string cfg_file = jinja_path == path ? (fs::path(path).parent_path() / "tokenizer_config.json").string()
                                                  : config_path;
  if (fs::exists(cfg_file, ec)) {
    try {
      cfg = nlohmann::json::parse(read_text(cfg_file));
    } catch (const nlohmann::json::exception& e) {
      throw Error(str(cfg_file, ": invalid JSON (", e.what(), ")"));
    }
    DTUNE_CHECK(cfg.is_object(), cfg_file, ": expected a JSON object");
  } else {
    DTUNE_CHECK(!jinja_path.empty(), cfg_file, ": no such file; conversational rows need the model's ",
                "tokenizer_config.json (its chat_template) beside tokenizer.json, or --chat-template FILE");
  }
  if (!jinja_path.empty()) return recognise(read_text(jinja_path), token_text(cfg, "bos_token"), jinja_path);

  DTUNE_CHECK(cfg.contains("chat_template"), cfg_file, ": no \"chat_template\"; this tokenizer has no chat ",
              "format. Pass --chat-template with the model's tokenizer_config.json, or use --template-file");
  const nlohmann::json& ct = cfg["chat_template"];
  std::string text;
  if (ct.is_string()) {
    text = ct.get<std::string>();
  } else if (ct.is_array()) {  // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
    for (const auto& entry : ct) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        text = entry["template"].get<std::string>();
      }
    }
    DTUNE_CHECK(!text.empty(), cfg_file, ": chat_template is a list without a \"default\" entry");
  } else {
    throw Error(str(cfg_file, ": chat_template must be a string or a list of {name, template}"));
  }
  return recognise(text, token_text(cfg, "bos_token"), cfg_file);
}

RenderedChat ChatTemplate::render(const std::vector<ChatMessage>& messages, size_t first_trained) const {
  RenderedChat out;
  const auto trained = [&](size_t i) { return messages[i].role == "assistant" && i >= first_trained; };
  switch (family_) {
    case ChatFamily::kDeepSeek: {
      // {% for message in messages %}{% if message['role'] == 'system' %} ns.system_prompt =
      //   (V3) ns.system_prompt + '\n\n' + content after the first / (R1) content {% endif %}
      // {{bos_token}}{{ns.system_prompt}} then per turn: user '<｜User｜>' + content; assistant
      // (R1: content = content.split('</think>')[-1]) '<｜Assistant｜>' + content + EOS.
      std::string system;
      bool first_system = true;
      for (const ChatMessage& m : messages) {
        if (m.role != "system") continue;
        system = join_system_ && !first_system ? system + "\n\n" + m.content : m.content;
        first_system = false;
      }
      out.text = bos_token_ + system;
      for (size_t i = 0; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        if (m.role == "user") {
          out.text.append(kR1User).append(m.content);
        } else if (m.role == "assistant") {
          std::string content = m.content;
          const size_t think = strip_reasoning_ ? content.rfind(kThinkEnd) : std::string::npos;
          if (think != std::string::npos) {
            content = content.substr(think + kThinkEnd.size());
            ++out.dropped_reasoning_turns;
          }
          out.text.append(kR1Assistant);
          append_turn(out, content, kR1Eos, trained(i));
        }
      }
      return out;
    }
    case ChatFamily::kLlama3:
    case ChatFamily::kLlama31: {
      // Llama 3: per turn '<|start_header_id|>' + role + '<|end_header_id|>\n\n' +
      // content|trim + '<|eot_id|>', bos_token before the first. Llama 3.1: {{- bos_token }},
      // a system header with the dates and messages[0]'s content|trim when it is a system turn
      // (then dropped from the turns), then the turns as in Llama 3.
      size_t start = 0;
      if (family_ == ChatFamily::kLlama31) {
        out.text = bos_token_;
        out.text.append(kHeaderStart).append("system").append(kHeaderEnd).append(kLlama31Dates);
        if (!messages.empty() && messages[0].role == "system") {
          out.text += python_strip(messages[0].content);
          start = 1;
        }
        out.text.append(kEot);
      }
      for (size_t i = start; i < messages.size(); ++i) {
        if (family_ == ChatFamily::kLlama3 && i == 0) out.text += bos_token_;
        out.text.append(kHeaderStart).append(messages[i].role).append(kHeaderEnd);
        append_turn(out, python_strip(messages[i].content), kEot, trained(i));
      }
      return out;
    }
    case ChatFamily::kChatML: {
      // SmolLM2 / Qwen2: {% if loop.first and messages[0]['role'] != 'system' %} default
      // system turn {% endif %} then '<|im_start|>' + role + '\n' + content + '<|im_end|>' +
      // '\n' per turn. Qwen2.5 (no tools): {%- if messages[0]['role'] == 'system' %} that turn
      // {%- else %} the default system turn, then per turn (a system turn only when not
      // loop.first) the same ChatML line: the same text.
      if (!messages.empty() && messages[0].role != "system" && !default_system_.empty()) {
        out.text.append(kImStart).append("system\n").append(default_system_).append(kImEnd).append("\n");
      }
      for (size_t i = 0; i < messages.size(); ++i) {
        out.text.append(kImStart).append(messages[i].role).append("\n");
        append_turn(out, messages[i].content, kImEnd, trained(i));
        out.text += "\n";
      }
      return out;
    }
    case ChatFamily::kQwen3: {
      // {% if messages[0].role == 'system' %}'<|im_start|>system\n' + content + '<|im_end|>\n'
      // ns.last_query_index: the last user turn (not a <tool_response>). Per turn: user (or a
      // later system) as ChatML; assistant: if '</think>' in content: content =
      // content.split('</think>')[-1].lstrip('\n'), reasoning = content.split('</think>')[0]
      // .rstrip('\n').split('<think>')[-1].lstrip('\n'); after the last query and (last turn or
      // reasoning): '<|im_start|>assistant\n<think>\n' + reasoning.strip('\n') +
      // '\n</think>\n\n' + content.lstrip('\n'), else '<|im_start|>assistant\n' + content; then
      // '<|im_end|>\n'.
      constexpr std::string_view kTR = "<tool_response>", kTRe = "</tool_response>";
      size_t last_query = messages.empty() ? 0 : messages.size() - 1;
      for (size_t k = messages.size(); k-- > 0;) {
        const std::string& c = messages[k].content;
        const bool tool_response = c.rfind(kTR, 0) == 0 && c.size() >= kTRe.size() &&
                                   c.compare(c.size() - kTRe.size(), kTRe.size(), kTRe) == 0;
        if (messages[k].role == "user" && !tool_response) {
          last_query = k;
          break;
        }
      }
      for (size_t i = 0; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        if (m.role != "assistant") {
          out.text.append(kImStart).append(m.role).append("\n").append(m.content).append(kImEnd).append("\n");
          continue;
        }
        std::string content = m.content, reasoning;
        const size_t close = m.content.find(kThinkEnd);
        if (close != std::string::npos) {
          content = lstrip_char(m.content.substr(m.content.rfind(kThinkEnd) + kThinkEnd.size()), '\n');
          const std::string before = rstrip_char(m.content.substr(0, close), '\n');
          const size_t open = before.rfind("<think>");
          reasoning = lstrip_char(open == std::string::npos ? before : before.substr(open + 7), '\n');
        }
        out.text.append(kImStart).append("assistant\n");
        if (i > last_query && (i + 1 == messages.size() || !reasoning.empty())) {
          content = "<think>\n" + rstrip_char(lstrip_char(reasoning, '\n'), '\n') + "\n</think>\n\n" +
                    lstrip_char(content, '\n');
        } else if (close != std::string::npos) {
          ++out.dropped_reasoning_turns;
        }
        append_turn(out, content, kImEnd, trained(i));
        out.text += "\n";
      }
      return out;
    }
  }
  return out;
}

}  // namespace dtune
