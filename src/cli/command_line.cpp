// parse_args and parse_args_with_overrides: see command_line.h.
#include "dtune/cli/command_line.h"

#include <iostream>

#include "dtune/config/config_parser.h"
#include "dtune/core/error.h"

namespace dtune::cli {

std::optional<int> parse_args(const CommandLine& cl, int argc, char** argv, po::variables_map& vm,
                              const std::function<void()>& check) {
  try {
    po::store(po::parse_command_line(argc, argv, cl.options), vm);
    if (vm.count("help")) {  // before notify, so --help works without the required options
      std::cout << cl.options << "\n" << cl.help_epilog;
      return kExitOk;
    }
    po::notify(vm);
    if (check) check();
  } catch (const po::error& e) {
    std::cerr << "dtune " << cl.name << ": " << e.what() << "\n";
    if (cl.usage_after_error) {
      std::cerr << "\n" << cl.options << "\n";
    } else {
      std::cerr << "(see dtune " << cl.name << " --help)\n";
    }
    return kExitUsage;
  }
  return std::nullopt;
}

std::optional<int> parse_args_with_overrides(const char* name, const po::options_description& own, int argc,
                                             char** argv, po::variables_map& vm, std::vector<std::string>& overrides) {
  try {
    const po::parsed_options parsed = po::command_line_parser(argc, argv).options(own).allow_unregistered().run();
    po::store(parsed, vm);
    if (vm.count("help")) {
      po::options_description all;
      all.add(own).add(config_options_description());
      std::cout << all << "\n";
      return kExitOk;
    }
    overrides = po::collect_unrecognized(parsed.options, po::include_positional);
  } catch (const po::error& e) {
    std::cerr << "dtune " << name << ": " << e.what() << "\n(see dtune " << name << " --help)\n";
    return kExitUsage;
  }
  return std::nullopt;
}

}  // namespace dtune::cli
