// Reading a subcommand's command line: parse against its options, answer --help, report usage
// errors. Each *_command.cpp keeps only its option list and what it does with the values.
#pragma once

#include <boost/program_options.hpp>

#include <charconv>
#include <functional>
#include <optional>
#include <string>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "dtune/core/option_field.h"

namespace dtune::cli {

namespace po = boost::program_options;

// How a command's --help and usage errors read.
struct CommandLine {
  const char* name;                          // "generate": a usage error starts "dtune generate: "
  const po::options_description& options;    // parsed; --help prints it to stdout
  const char* help_epilog = "";              // printed after the options by --help (e.g. an example)
  bool usage_after_error = true;             // false: a usage error says "(see dtune NAME --help)" instead
};

// Parses argv (argv[0] = the command name) into vm and runs po::notify, then `check` (which reads
// vm and may throw po::error for rules across options). Returns the exit code to return now: kExitOk after
// --help, kExitUsage after printing "dtune NAME: <what>" and the usage to stderr; std::nullopt
// to run the command.
std::optional<int> parse_args(const CommandLine& cl, int argc, char** argv, po::variables_map& vm,
                              const std::function<void()>& check = {});

// For config and train: arguments not in `own` go to `overrides` (--section.key=value; load_config
// rejects unknown ones by name), and --help lists `own` and every config option. A malformed
// command line (e.g. --config without a value) prints "dtune NAME: ..." and returns kExitUsage.
std::optional<int> parse_args_with_overrides(const char* name, const po::options_description& own, int argc,
                                             char** argv, po::variables_map& vm, std::vector<std::string>& overrides);

// Adds every field of an options struct as a flag "--key" ('_' written '-') bound to options:
// the field's help, its default the struct's current value (shown by --help). The same
// definitions the config binds as "section.key" (core/option_field.h); an std::optional field has
// no default and stays unset unless the flag is given. Text fields only as
// int64 / uint64 / double / string / bool values; list fields are not flags (std::logic_error).
template <class T>
inline constexpr bool is_optional_v = false;
template <class T>
inline constexpr bool is_optional_v<std::optional<T>> = true;

template <class Options>
void add_option_fields(po::options_description& desc, Options& options,
                       const std::vector<OptionField<Options>>& fields) {
  for (const OptionField<Options>& f : fields) {
    const std::string flag = flag_name(f.key);
    std::visit(
        [&](const auto& ref) {
          auto& field = ref(options);
          using T = std::remove_reference_t<decltype(field)>;
          if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            throw std::logic_error("add_option_fields: list field " + flag + " is not a flag");
          } else if constexpr (is_optional_v<T>) {  // no default: unset until given
            using V = typename T::value_type;
            desc.add_options()(flag.c_str(), po::value<V>()->notifier([&field](const V& v) { field = v; }), f.help);
          } else if constexpr (std::is_same_v<T, double>) {  // shown as written: 0.95, not 0.94999999999999996
            char text[32];
            const auto end = std::to_chars(text, text + sizeof(text), field).ptr;
            desc.add_options()(flag.c_str(), po::value<T>(&field)->default_value(field, std::string(text, end)), f.help);
          } else {
            desc.add_options()(flag.c_str(), po::value<T>(&field)->default_value(field), f.help);
          }
        },
        f.access);
  }
}

}  // namespace dtune::cli
