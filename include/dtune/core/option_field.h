// One definition per option. An options struct (LoraOptions, SamplingOptions, GenerateOptions)
// holds its defaults as member initializers, lists its user-facing fields once with their help
// (fields()), and checks itself (validate(names)). The INI config binds those fields as
// "section.key" (src/config/config_parser.cpp) and a subcommand binds them as flags "--key" with
// '_' written '-' (src/cli/command_line.h), so both share defaults, help and validation; the
// messages name the option as the caller spells it (OptionNames).
#pragma once

#include <cstdint>
#include <functional>
#include <type_traits>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "dtune/core/error.h"

namespace dtune {

// How the caller spells an option in messages: a config section ("lora" -> "lora.r") or the
// command line ("top_p" -> "--top-p").
class OptionNames {
 public:
  static OptionNames config_section(std::string section) { return OptionNames(std::move(section) + ".", false); }
  static OptionNames command_line() { return OptionNames("--", true); }
  std::string operator()(std::string_view key) const;

 private:
  OptionNames(std::string prefix, bool dashes) : prefix_(std::move(prefix)), dashes_(dashes) {}
  std::string prefix_;
  bool dashes_;
};

// A field key as a command-line flag, without the leading dashes: "top_p" -> "top-p".
std::string flag_name(std::string_view key);

// One user-facing field of Options: its key (the config key; the flag is flag_name(key)), one
// line of help (unit, range, the "off" value), and a reference to the field. Readers const_cast
// the options (the accessor never writes).
template <class Options>
struct OptionField {
  template <class T>
  using Ref = std::function<T&(Options&)>;
  // std::optional fields are "unset" until given (empty text in a config file or config.ini); the
  // module resolves an unset field itself (e.g. generation knobs from generation_config.json).
  using Access = std::variant<Ref<int64_t>, Ref<uint64_t>, Ref<double>, Ref<bool>, Ref<std::string>,
                              Ref<std::vector<std::string>>, Ref<std::optional<int64_t>>,
                              Ref<std::optional<double>>, Ref<std::optional<bool>>>;
  const char* key;
  const char* help;
  Access access;
};

// DTUNE_OPTION_FIELD(Options, "key", member expression, "help"): member is a path below
// Options, e.g. sampling.top_p.
#define DTUNE_OPTION_FIELD(Options, key, member, help)                                          \
  ::dtune::OptionField<Options> {                                                               \
    key, help, ::dtune::OptionField<Options>::Ref<std::remove_reference_t<decltype(std::declval<Options&>().member)>>( \
                   [](Options& o) -> auto& { return o.member; })                                \
  }

// The fields of an inner options struct, reached from Outer through inner (same keys and help):
// how a config section or a larger options struct embeds another one's definitions.
template <class Outer, class Inner, class Get>
std::vector<OptionField<Outer>> nest_option_fields(const std::vector<OptionField<Inner>>& fields, Get inner) {
  std::vector<OptionField<Outer>> out;
  for (const OptionField<Inner>& f : fields) {
    out.push_back({f.key, f.help, std::visit([&](const auto& ref) -> typename OptionField<Outer>::Access {
                     using T = std::remove_reference_t<decltype(ref(std::declval<Inner&>()))>;
                     return typename OptionField<Outer>::template Ref<T>(
                         [ref, inner](Outer& o) -> T& { return ref(inner(o)); });
                   }, f.access)});
  }
  return out;
}

// Throws dtune::Error "option NAME RULE, got VALUE" unless ok.
template <typename T>
void require_option(bool ok, const std::string& name, const T& value, const char* rule) {
  if (!ok) throw Error(str("option ", name, " ", rule, ", got ", value));
}

// Throws dtune::Error "option NAME must be one of a | b, got 'VALUE'" unless value is allowed.
void require_option_one_of(const std::string& value, const std::string& name,
                           std::initializer_list<const char*> allowed);

}  // namespace dtune
