// Conversational input rows in the field's formats (TRL `messages`, TRL prompt-completion with
// message lists, ShareGPT `conversations`): which format a file is in, and turning one row's
// JSON into validated ChatMessages. Rendering is chat_template.h's job.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "dtune/data/chat_template.h"

namespace dtune {

enum class RowFormat {
  kAuto,              // chosen from the first row's fields (detect_row_format)
  kTemplate,          // string fields through a prompt template (prompt_template.h)
  kMessages,          // TRL: {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}]}
  kPromptCompletion,  // TRL: {"prompt": [messages], "completion": [assistant messages]}
  kShareGpt,          // {"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}]}
};
// "auto" | "template" | "messages" | "prompt-completion" | "sharegpt"; else dtune::Error.
RowFormat parse_row_format(const std::string& name);
const char* row_format_name(RowFormat format);
bool is_conversational(RowFormat format);

// The JSON fields a conversational format reads, each a list of messages: {"messages"},
// {"prompt", "completion"} or {"conversations"}.
std::vector<std::string> conversation_fields(RowFormat format);

// Picks the format from the first row's field names: "messages" -> messages, "conversations"
// -> sharegpt, "prompt" and "completion" -> prompt-completion, all of template_fields ->
// template. Throws dtune::Error naming path, the fields found and each format's fields when
// none fits.
RowFormat detect_row_format(const std::vector<std::string>& first_row_fields,
                            const std::vector<std::string>& template_fields, const std::string& path);

// Converts field `field` of a row (a JSON array of message objects) to messages with roles
// system/user/assistant (ShareGPT's human/gpt mapped to user/assistant). Returns "" or what is
// wrong, naming the message index and key, e.g. `field "messages"[2] has no "role" (it has:
// content)`; the caller adds file and row.
std::string parse_messages(const nlohmann::json& value, RowFormat format, const std::string& field,
                           std::vector<ChatMessage>& out);

// Checks one row's conversation (prompt-completion: both lists, in order) and joins it into
// messages; first_trained is where the completion starts (prompt-completion) or 0. Rules: a
// system turn only first, at least one assistant turn, the last turn an assistant one (nothing
// would be learnt from what follows it), and in prompt-completion a completion of assistant
// turns only after a prompt without one last. Returns "" or the problem.
std::string join_conversation(RowFormat format, std::vector<std::vector<ChatMessage>>& fields,
                              std::vector<ChatMessage>& messages, size_t& first_trained);

}  // namespace dtune
