// `dtune config`: resolve a config (INI file + --section.key=value overrides), validate it and
// print it, so a job script can be checked on a login node before it is submitted.
#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>

#include "dtune/cli/commands.h"
#include "dtune/config/config_parser.h"
#include "dtune/core/error.h"

namespace po = boost::program_options;

namespace dtune::cli {

int run_config(int argc, char** argv) {
  po::options_description own("dtune config --config FILE.ini [--section.key=value ...]");
  own.add_options()("help,h", "show this help")("config", po::value<std::string>(), "INI file (see configs/)")(
      "no-validate", "print without validating")(
      "get", po::value<std::string>(), "print only this option's value (section.key), e.g. for job scripts");
  po::options_description all;
  all.add(own).add(config_options_description());

  po::variables_map vm;
  po::parsed_options parsed = po::command_line_parser(argc, argv).options(own).allow_unregistered().run();
  po::store(parsed, vm);
  if (vm.count("help")) {
    std::cout << all << "\n";
    return kExitOk;
  }
  // Everything not ours is a config override; load_config reports unknown ones by name.
  const std::vector<std::string> overrides = po::collect_unrecognized(parsed.options, po::include_positional);
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
