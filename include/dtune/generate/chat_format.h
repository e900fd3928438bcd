// Prompt forms for generation: the model's chat format (its chat_template in
// tokenizer_config.json, rendered by data/chat_template.h or recognised by markers), the recipe's training form, the DeepSeek-R1 chat form, or raw text.
#pragma once

#include <string>
#include <string_view>

namespace dtune {

enum class ChatStyle {
  kChatML,      // <|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n (SmolLM2, Qwen)
  kDeepSeekR1,  // {bos}<｜User｜>{prompt}<｜Assistant｜> (DeepSeek-R1 and its distills)
};

// What apply_chat_template(messages=[user prompt], add_generation_prompt=True) produces for the
// one-user-turn case, reduced to the pieces that vary between models of one style.
struct ChatFormat {
  ChatStyle style = ChatStyle::kChatML;
  std::string bos_token;         // kDeepSeekR1: text emitted first (the template's {{bos_token}})
  std::string system_message;    // kChatML: the default system turn's text the template inserts
                                 // when the first message is not a system one ("" = none)
  std::string assistant_prefix;  // text the template appends after the assistant tag
                                 // ("<think>\n" in newer R1 distills)
};

// Recognises chat_template (the Jinja source). Throws dtune::Error for a template of neither
// style, suggesting --no-chat.
ChatFormat detect_chat_format(const std::string& chat_template, const std::string& bos_token);
// Reads model_dir/tokenizer_config.json ("chat_template", "bos_token"). Throws dtune::Error
// naming the file when it or its chat_template is missing.
ChatFormat load_chat_format(const std::string& model_dir);

std::string format_chat_prompt(const ChatFormat& format, std::string_view prompt);

// The prompt part of `dtune pretokenize`'s template preset (data/prompt_template.h) with prompt
// in {Question}: the very text the model was trained on before its completion. Throws
// dtune::Error for an unknown preset or one whose prompt part names another field.
std::string format_preset_prompt(const std::string& preset, std::string_view prompt);
// Preset "recipe" ("Please reason step by step:\n\nQuestion: {prompt}\n\n...").
std::string format_recipe_prompt(std::string_view prompt);
// Preset "r1-chat": BOS text, user turn, assistant tag and "<think>\n".
std::string format_r1_chat_prompt(std::string_view prompt);

// A prompt ready to tokenize: text plus whether encode() should add the tokenizer's special
// tokens (false when the text carries them already, as apply_chat_template's output does).
struct FormattedPrompt {
  std::string text;
  bool add_special_tokens = true;
};

// apply_chat_template([{system}], {user: prompt}], add_generation_prompt=True) for model_dir's
// tokenizer_config.json (or chat_template.jinja): rendered by data/chat_template.h when dtune
// knows the template (Llama 3 / 3.1, DeepSeek-V3 / R1 distills, SmolLM2, Qwen3; with an
// optional system message), else by the ChatML / DeepSeek-R1 markers above (no system message).
// Throws dtune::Error naming the file when neither applies.
FormattedPrompt format_model_chat_prompt(const std::string& model_dir, std::string_view prompt,
                                         std::string_view system = {});

// form: "chat" (the model's chat format, from model_dir; format_model_chat_prompt), "recipe",
// "r1-chat" or "none" (raw text, encoded like tokenizer(prompt)). system: a system message, for
// "chat" only. Throws dtune::Error listing the forms for another name.
FormattedPrompt format_prompt(std::string_view form, std::string_view prompt,
                              const std::string& model_dir, std::string_view system = {});

}  // namespace dtune
