// `dtune config`: resolve a config (INI file + --section.key=value overrides), validate it and
// print it, so a job script can be checked on a login node before it is submitted.
#include <cstdio>

#include "dtune/cli/command_line.h"
#include "dtune/cli/commands.h"
#include "dtune/config/config_parser.h"
#include "dtune/core/error.h"

namespace dtune::cli {

int run_config(int argc, char** argv) {
  po::options_description own("dtune config --config FILE.ini [--section.key=value ...]");
  own.add_options()("help,h", "show this help")("config", po::value<std::string>(), "INI file (see configs/)")(
      "no-validate", "print without validating")(
      "get", po::value<std::string>(), "print only this option's value (section.key), e.g. for job scripts");
  po::variables_map vm;
  std::vector<std::string> overrides;  // everything not ours; load_config reports unknown ones by name
  if (const auto exit_code = parse_args_with_overrides("config", own, argc, argv, vm, overrides)) return *exit_code;
  const Config config = load_config(vm.count("config") ? vm["config"].as<std::string>() : "", overrides);
  if (!vm.count("no-validate")) validate(config);
  if (vm.count("get")) {
    std::printf("%s\n", config_value(config, vm["get"].as<std::string>()).c_str());
    return kExitOk;
  }
  std::fputs(format_config(config).c_str(), stdout);
  return kExitOk;
}

}  // namespace dtune::cli
