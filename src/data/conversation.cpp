// Conversational row formats; see include/dtune/data/conversation.h.
#include "dtune/data/conversation.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"

namespace dtune {
namespace {

std::string keys_of(const nlohmann::json& object) {
  std::string have;
  for (auto it = object.begin(); it != object.end(); ++it) have += (have.empty() ? "" : ", ") + it.key();
  return have.empty() ? "no keys" : have;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "no fields" : out;
}

}  // namespace

RowFormat parse_row_format(const std::string& name) {
  if (name == "auto") return RowFormat::kAuto;
  if (name == "template") return RowFormat::kTemplate;
  if (name == "messages") return RowFormat::kMessages;
  if (name == "prompt-completion") return RowFormat::kPromptCompletion;
  if (name == "sharegpt") return RowFormat::kShareGpt;
  throw Error(str("--format: expected auto, template, messages, prompt-completion or sharegpt, got '", name, "'"));
}

const char* row_format_name(RowFormat format) {
  switch (format) {
    case RowFormat::kTemplate: return "template";
    case RowFormat::kMessages: return "messages";
    case RowFormat::kPromptCompletion: return "prompt-completion";
    case RowFormat::kShareGpt: return "sharegpt";
    default: return "auto";
  }
}

bool is_conversational(RowFormat format) {
  return format == RowFormat::kMessages || format == RowFormat::kPromptCompletion || format == RowFormat::kShareGpt;
}

std::vector<std::string> conversation_fields(RowFormat format) {
  switch (format) {
    case RowFormat::kMessages: return {"messages"};
    case RowFormat::kPromptCompletion: return {"prompt", "completion"};
    case RowFormat::kShareGpt: return {"conversations"};
    default: return {};
  }
}

RowFormat detect_row_format(const std::vector<std::string>& fields, const std::vector<std::string>& template_fields,
                            const std::string& path) {
  const auto has = [&](const std::string& f) { return std::find(fields.begin(), fields.end(), f) != fields.end(); };
  if (has("messages")) return RowFormat::kMessages;
  if (has("conversations")) return RowFormat::kShareGpt;
  if (has("prompt") && has("completion")) return RowFormat::kPromptCompletion;
  if (std::all_of(template_fields.begin(), template_fields.end(), has)) return RowFormat::kTemplate;
  throw Error(str(path, ": cannot tell the row format from the first row's fields (", join(fields),
                  "). dtune reads: \"messages\" (TRL conversational), \"prompt\" + \"completion\" (TRL ",
                  "prompt-completion), \"conversations\" (ShareGPT), or the template's fields (", join(template_fields),
                  "). Pass --format, or --template-file with a template naming your fields"));
}

std::string parse_messages(const nlohmann::json& value, RowFormat format, const std::string& field,
                           std::vector<ChatMessage>& out) {
  out.clear();
  const bool sharegpt = format == RowFormat::kShareGpt;
  const char* role_key = sharegpt ? "from" : "role";
  const char* content_key = sharegpt ? "value" : "content";
  if (!value.is_array()) {
    return str("field \"", field, "\" is a ", value.type_name(), ", expected a list of messages ",
               sharegpt ? "[{\"from\": ..., \"value\": ...}]" : "[{\"role\": ..., \"content\": ...}]");
  }
  if (value.empty()) return str("field \"", field, "\" is an empty list; every row needs its turns");
  for (size_t i = 0; i < value.size(); ++i) {
    const nlohmann::json& m = value[i];
    const std::string at = str("field \"", field, "\"[", i, "]");
    if (!m.is_object()) return str(at, " is a ", m.type_name(), ", expected a message object");
    for (const char* key : {role_key, content_key}) {
      auto it = m.find(key);
      if (it == m.end()) return str(at, " has no \"", key, "\" (it has: ", keys_of(m), ")");
      if (!it->is_string()) {
        return str(at, ": \"", key, "\" is ", it->type_name(), ", expected a string",
                   it->is_null() ? " (tool calls are not supported)" : "");
      }
    }
    std::string role = m[role_key].get<std::string>();
    if (sharegpt) {
      if (role == "human") role = "user";
      else if (role == "gpt") role = "assistant";
      else if (role != "system") {
        return str(at, ": unknown \"from\": \"", role, "\"; ShareGPT turns are from system, human or gpt");
      }
    } else if (role != "system" && role != "user" && role != "assistant") {
      return str(at, ": unknown role \"", role, "\"; dtune trains on system, user and assistant turns");
    }
    out.push_back({std::move(role), m[content_key].get<std::string>()});
  }
  return "";
}

std::string join_conversation(RowFormat format, std::vector<std::vector<ChatMessage>>& fields,
                              std::vector<ChatMessage>& messages, size_t& first_trained) {
  messages.clear();
  first_trained = 0;
  const std::vector<std::string> names = conversation_fields(format);
  if (format == RowFormat::kPromptCompletion) {
    const std::vector<ChatMessage>& prompt = fields.at(0);
    const std::vector<ChatMessage>& completion = fields.at(1);
    for (size_t i = 0; i < completion.size(); ++i) {
      if (completion[i].role != "assistant") {
        return str("field \"completion\"[", i, "] has role \"", completion[i].role,
                   "\"; the completion holds the assistant's turns only (move it to \"prompt\")");
      }
    }
    if (prompt.back().role == "assistant") {
      return str("field \"prompt\"[", prompt.size() - 1, "] is an assistant turn; the prompt must end with ",
                 "the turn the completion answers (move it to \"completion\")");
    }
    messages = prompt;
    first_trained = prompt.size();
    messages.insert(messages.end(), completion.begin(), completion.end());
  } else {
    messages = std::move(fields.at(0));
  }
  const std::string& field = names.front();
  for (size_t i = 1; i < messages.size(); ++i) {
    if (messages[i].role == "system") {
      return str("field \"", field, "\": turn ", i, " is a system turn; only the first turn may be one");
    }
  }
  if (messages.back().role != "assistant") {
    return str("field \"", format == RowFormat::kPromptCompletion ? "completion" : field,
               "\": the last turn is a ", messages.back().role == "user" ? "user" : "system",
               " turn, not an assistant turn; nothing after it would be learnt (drop it, or end with the answer)");
  }
  return "";
}

}  // namespace dtune
