// Filling a Config from an INI file plus `--section.key=value` overrides (Boost.Program_options),
// and printing the resolved config back as INI.
#pragma once

#include <string>
#include <vector>

#include "dtune/config/config.h"

namespace boost::program_options {
class options_description;
}

namespace dtune {

// Every config option as "section.key" with its help text (for `dtune train --help`).
boost::program_options::options_description config_options_description();

// Reads ini_path (may be empty: defaults only), then applies overrides in order. Each override
// is "section.key=value" (a leading "--" is accepted). Unknown keys, malformed values and
// unreadable files throw dtune::Error naming the option and the file. Does NOT call validate().
Config load_config(const std::string& ini_path, const std::vector<std::string>& overrides);

// One resolved value by "section.key", as format_config prints it; an unknown name throws.
std::string config_value(const Config& config, const std::string& name);

// The resolved config as INI text; load_config(file with this text, {}) gives the same Config.
std::string format_config(const Config& config);

}  // namespace dtune
