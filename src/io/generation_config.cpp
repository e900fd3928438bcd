// load_generation_config: generation_config.json's sampling and length knobs (see generation_config.h).
#include "dtune/io/generation_config.h"

#include <filesystem>

#include "dtune/core/error.h"
#include "json_file.h"

namespace dtune {
namespace {

using nlohmann::json;

// The value at key, or unset when absent or null; throws naming file and key on a wrong type.
template <class T>
std::optional<T> optional_value(const json& j, const char* key, const std::string& file) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  bool ok = false;
  if constexpr (std::is_same_v<T, bool>) ok = it->is_boolean();
  else if constexpr (std::is_integral_v<T>) ok = it->is_number_integer();
  else ok = it->is_number();
  DTUNE_CHECK(ok, file, ": \"", key, "\" must be ",
              std::is_same_v<T, bool> ? "true or false" : std::is_integral_v<T> ? "an integer" : "a number",
              ", got ", it->dump());
  return it->get<T>();
}

}  // namespace

GenerationConfig load_generation_config(const std::string& model_dir) {
  GenerationConfig g;
  const std::string file = (std::filesystem::path(model_dir) / "generation_config.json").string();
  if (!std::filesystem::is_regular_file(file)) return g;
  const json j = io_detail::read_json_file(file);
  DTUNE_CHECK(j.is_object(), file, ": expected a JSON object");
  g.file = file;
  g.do_sample = optional_value<bool>(j, "do_sample", file);
  g.temperature = optional_value<double>(j, "temperature", file);
  g.top_p = optional_value<double>(j, "top_p", file);
  g.top_k = optional_value<int64_t>(j, "top_k", file);
  g.repetition_penalty = optional_value<double>(j, "repetition_penalty", file);
  g.max_new_tokens = optional_value<int64_t>(j, "max_new_tokens", file);
  g.max_length = optional_value<int64_t>(j, "max_length", file);
  return g;
}

}  // namespace dtune
