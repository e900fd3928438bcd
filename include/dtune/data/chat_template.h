// A model's chat template (the Jinja `chat_template` of tokenizer_config.json), recognised and
// rendered natively: the text transformers' apply_chat_template(messages, tokenize=False,
// add_generation_prompt=False) produces, plus the byte spans of each assistant turn that take
// the loss. dtune has no Jinja engine: a template is recognised by the sha256 of its exact text
// among templates whose output was proven equal to transformers' (tests/data/
// chat_template_test.cpp against scripts/gen_chat_fixtures.py); any other template is refused.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace dtune {

// One conversation turn. role: "system", "user" or "assistant" (other roles are rejected when
// rows are read, see conversation.h); content: UTF-8 text.
struct ChatMessage {
  std::string role;
  std::string content;
};

// How the recognised families lay out a conversation (the Jinja each stands for, reduced to
// the no-tools path that training rows take).
enum class ChatFamily {
  kDeepSeek,  // {bos}{system}<｜User｜>{u}<｜Assistant｜>{a}<｜end▁of▁sentence｜>... (V3, R1, distills)
  kLlama3,    // {bos}<|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>...
  kLlama31,   // Llama 3 plus a system header that always opens with the knowledge/today dates
  kChatML,    // <|im_start|>{role}\n{content}<|im_end|>\n..., a default system turn if none
  kQwen3,     // ChatML; assistant turns after the last user turn as <think>\n{reasoning}\n</think>\n\n{answer},
              // earlier ones keep only what follows </think>
};

// Rendered conversation. text is what apply_chat_template(tokenize=False) returns; loss_spans
// are byte ranges [begin, end) of text, one per trained assistant turn: the turn's content as
// the template emits it (trimmed or with reasoning stripped, as the template does) and its
// end-of-turn token. transformers' return_assistant_tokens_mask marks the same spans (on
// templates with {% generation %} markers); TRL's assistant_only_loss trains on them.
struct RenderedChat {
  std::string text;
  std::vector<std::pair<size_t, size_t>> loss_spans;
  // Assistant turns whose reasoning (the text up to </think>) the template left out, as
  // apply_chat_template does: the DeepSeek-R1 templates drop it from every assistant turn,
  // Qwen3's from turns before the last user turn. pretokenize reports the count.
  int dropped_reasoning_turns = 0;
};

class ChatTemplate {
 public:
  // Reads `chat_template` (a string, or the "default" entry of a list of named templates),
  // `bos_token` and `eos_token` from a tokenizer_config.json, or from a folder's
  // chat_template.jinja (which transformers prefers when present) plus its
  // tokenizer_config.json. path: that file or the folder. Throws dtune::Error naming the file
  // when it cannot be read, has no chat_template, or the template is not one dtune knows (the
  // message lists the known families).
  static ChatTemplate load(const std::string& path);
  // Recognises template text; source names it in errors. bos_token: the text {{ bos_token }}
  // stands for ("" when the tokenizer has none).
  static ChatTemplate recognise(const std::string& template_text, const std::string& bos_token,
                                const std::string& source);
  // Names of the recognised templates ("DeepSeek-V3", "Llama 3.1 Instruct", ...), for messages.
  static std::vector<std::string> known_names();

  ChatFamily family() const { return family_; }
  const std::string& name() const { return name_; }      // e.g. "DeepSeek-R1-Distill (first release)";
                                                         // in the HDF5 template_name attribute
  const std::string& sha256() const { return sha256_; }  // of the template text
  const std::string& source() const { return source_; }  // the file it was read from

  // Renders messages (as validated by conversation.h: roles system/user/assistant). Assistant
  // turns at index >= first_trained get a loss span; 0 = every assistant turn
  // (assistant_only_loss), messages.size() = none.
  RenderedChat render(const std::vector<ChatMessage>& messages, size_t first_trained = 0) const;
  // What apply_chat_template(add_generation_prompt=True) appends after the rendered messages:
  // the assistant header ("<|start_header_id|>assistant<|end_header_id|>\n\n" for Llama 3/3.1,
  // "<｜Assistant｜>" or "<｜Assistant｜><think>\n" for DeepSeek, "<|im_start|>assistant\n" for ChatML).
  const std::string& generation_prompt() const { return generation_prompt_; }

 private:
  ChatFamily family_ = ChatFamily::kChatML;
  std::string name_;
  std::string sha256_;
  std::string source_;
  std::string bos_token_;
  std::string default_system_;     // kChatML: inserted when the first turn is not a system one
  bool join_system_ = false;       // kDeepSeek: all system turns joined by "\n\n" (V3); else the last (R1)
  bool strip_reasoning_ = false;   // kDeepSeek R1: an assistant turn keeps what follows its last </think>
  std::string generation_prompt_;  // add_generation_prompt's text
};

// Python's str.strip() (what Jinja's `trim` filter calls): removes leading and trailing
// Unicode whitespace (str.isspace), not only ASCII.
std::string python_strip(const std::string& text);

}  // namespace dtune
