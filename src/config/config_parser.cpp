// The option table behind the config: every "section.key" with a getter, a typed setter and its
// help. Boost.Program_options reads the INI file and the command line into strings; the table
// converts them into the Config structs, naming the option when a value does not parse.
#include "dtune/config/config_parser.h"

#include <boost/program_options.hpp>

#include <charconv>
#include <fstream>
#include <functional>
#include <sstream>

#include "dtune/core/error.h"
#include "dtune/core/option_field.h"

namespace po = boost::program_options;

namespace dtune {
namespace {

// One config option: its "section.key", help and field in Config (converted from and to text by
// the field's type: parse_value / format_value).
struct OptionSpec {
  std::string name;
  const char* help;
  OptionField<Config>::Access access;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

int64_t parse_int(const std::string& v) {
  const std::string t = trim(v);
  int64_t out = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  if (ec != std::errc() || p != t.data() + t.size() || t.empty()) throw std::invalid_argument("expected an integer");
  return out;
}

uint64_t parse_uint(const std::string& v) {
  const int64_t x = parse_int(v);
  if (x < 0) throw std::invalid_argument("expected a non-negative integer");
  return static_cast<uint64_t>(x);
}

double parse_double(const std::string& v) {
  const std::string t = trim(v);
  size_t used = 0;
  double out = 0;
  try {
    out = std::stod(t, &used);
  } catch (const std::exception&) {
    throw std::invalid_argument("expected a number");
  }
  if (used != t.size()) throw std::invalid_argument("expected a number");
  return out;
}

bool parse_bool(const std::string& v) {
  const std::string t = trim(v);
  if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return false;
  throw std::invalid_argument("expected true or false");
}

std::vector<std::string> parse_list(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Shortest text that reads back to the same double: 0.1 prints as "0.1", not 0.10000000000000001.
std::string format_double(double v) {
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}

std::string format_list(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
  return out;
}

// Escapes newlines so multi-line strings (prompts) survive the INI round trip.
std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\\') out += "\\\\";
    else out += c;
  }
  return out;
}

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char n = s[++i];
      out += n == 'n' ? '\n' : n == 't' ? '\t' : n;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string format_value(int64_t v) { return std::to_string(v); }
std::string format_value(uint64_t v) { return std::to_string(v); }
std::string format_value(double v) { return format_double(v); }
std::string format_value(bool v) { return v ? "true" : "false"; }
std::string format_value(const std::string& v) { return escape(v); }
std::string format_value(const std::vector<std::string>& v) { return format_list(v); }
template <class T>
std::string format_value(const std::optional<T>& v) { return v ? format_value(*v) : std::string(); }  // "" = unset

// Text -> field; throws std::invalid_argument saying what was expected.
void parse_value(const std::string& s, int64_t& out) { out = parse_int(s); }
void parse_value(const std::string& s, uint64_t& out) { out = parse_uint(s); }
void parse_value(const std::string& s, double& out) { out = parse_double(s); }
void parse_value(const std::string& s, bool& out) { out = parse_bool(s); }
void parse_value(const std::string& s, std::string& out) { out = unescape(trim(s)); }
void parse_value(const std::string& s, std::vector<std::string>& out) { out = parse_list(s); }
template <class T>
void parse_value(const std::string& s, std::optional<T>& out) {  // empty = unset
  if (trim(s).empty()) {
    out.reset();
    return;
  }
  T value{};
  parse_value(s, value);
  out = value;
}

std::string get_option(const OptionSpec& o, const Config& c) {
  return std::visit([&](const auto& ref) { return format_value(ref(const_cast<Config&>(c))); }, o.access);
}

void set_option(const OptionSpec& o, Config& c, const std::string& value) {
  std::visit([&](const auto& ref) { parse_value(value, ref(c)); }, o.access);
}

// Appends a section's fields as "section.key": the one definition (key, help, default, type)
// of each option, which the section (config.h) or the module it embeds owns.
template <class Section, class Get>
void add_section(std::vector<OptionSpec>& table, const std::string& section, Get get) {
  for (OptionField<Config>& f : nest_option_fields<Config>(Section::fields(), get))
    table.push_back({section + "." + f.key, f.help, std::move(f.access)});
}

// The one table of options, section by section in config-file order: "train.learning_rate".
const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> table = [] {
    std::vector<OptionSpec> t;
    add_section<ModelSection>(t, "model", [](Config& c) -> ModelSection& { return c.model; });
    add_section<LoraSection>(t, "lora", [](Config& c) -> LoraSection& { return c.lora; });
    add_section<DataSection>(t, "data", [](Config& c) -> DataSection& { return c.data; });
    add_section<TrainSection>(t, "train", [](Config& c) -> TrainSection& { return c.train; });
    add_section<CheckpointSection>(t, "checkpoint", [](Config& c) -> CheckpointSection& { return c.checkpoint; });
    add_section<GenerateSection>(t, "generate", [](Config& c) -> GenerateSection& { return c.generate; });
    add_section<LogSection>(t, "log", [](Config& c) -> LogSection& { return c.log; });
    return t;
  }();
  return table;
}

// Keys that were renamed. Still recognised when parsing (not listed in the help), so that an
// old config stops with the new name instead of "unrecognised option".
struct RenamedOption {
  const char* old_name;
  const char* new_name;
  const char* why;
};
const std::vector<RenamedOption>& renamed_options() {
  static const std::vector<RenamedOption> renamed = {
      {"train.checkpoint_every", "train.activation_checkpoint_every",
       "it is the activation-recompute stride of gradient checkpointing, unrelated to [checkpoint] saving"},
      {"train.nccl_timeout", "train.collective_timeout",
       "it now bounds the host-side MPI collectives too, on CPU and GPU runs; same unit, seconds"},
  };
  return renamed;
}

// Program_options sees every option as a string; the table converts.
po::options_description string_description() {
  po::options_description desc("config options (INI [section] key = value, or --section.key=value)");
  for (const OptionSpec& o : option_table()) desc.add_options()(o.name.c_str(), po::value<std::string>(), o.help);
  return desc;
}

// What the parsers accept: the table plus the renamed keys (which apply() refuses by name).
po::options_description parse_description() {
  po::options_description desc = string_description();
  for (const RenamedOption& r : renamed_options()) desc.add_options()(r.old_name, po::value<std::string>(), "renamed");
  return desc;
}

void apply(Config& config, const po::variables_map& vm, const std::string& origin) {
  for (const RenamedOption& r : renamed_options())
    DTUNE_CHECK(!vm.count(r.old_name), "option ", r.old_name, " (", origin, ") is now ", r.new_name, " (", r.why,
                "): rename it");
  for (const OptionSpec& o : option_table()) {
    if (!vm.count(o.name)) continue;
    const std::string& value = vm[o.name].as<std::string>();
    try {
      set_option(o, config, value);
    } catch (const std::invalid_argument& e) {
      throw Error(dtune::str("option ", o.name, " (", origin, "): ", e.what(), ", got '", value, "'"));
    }
  }
}

}  // namespace

po::options_description config_options_description() { return string_description(); }

Config load_config(const std::string& ini_path, const std::vector<std::string>& overrides) {
  Config config;
  const po::options_description desc = parse_description();
  if (!ini_path.empty()) {
    std::ifstream in(ini_path);
    DTUNE_CHECK(in, "cannot read config file ", ini_path, ": check the path (see configs/ for examples)");
    po::variables_map vm;
    try {
      po::store(po::parse_config_file(in, desc, /*allow_unregistered=*/false), vm);
    } catch (const po::error& e) {
      throw Error(dtune::str("config file ", ini_path, ": ", e.what(),
                             "\n  every key must be one of `dtune train --help`'s options, in its [section]"));
    }
    apply(config, vm, ini_path);
  }
  for (const std::string& raw : overrides) {
    std::string arg = raw.rfind("--", 0) == 0 ? raw.substr(2) : raw;
    const auto eq = arg.find('=');
    DTUNE_CHECK(eq != std::string::npos, "override '", raw, "' must look like --section.key=value");
    std::vector<std::string> args = {"--" + arg};
    po::variables_map vm;
    try {
      // No prefix guessing: "--train.lr" must not silently mean train.lr_scheduler.
      const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
      po::store(po::command_line_parser(args).options(desc).style(style).run(), vm);
    } catch (const po::error& e) {
      throw Error(dtune::str("command-line override '", raw, "': ", e.what(),
                             "\n  see `dtune train --help` for the option names"));
    }
    apply(config, vm, "command line");
  }
  return config;
}

std::string config_value(const Config& config, const std::string& name) {
  for (const OptionSpec& o : option_table())
    if (name == o.name) return get_option(o, config);
  throw Error("unknown config option '" + name + "'; `dtune config --help` lists them as section.key");
}

std::string format_config(const Config& config) {
  std::ostringstream os;
  std::string section;
  for (const OptionSpec& o : option_table()) {
    const std::string name = o.name;
    const auto dot = name.find('.');
    const std::string sec = name.substr(0, dot);
    if (sec != section) {
      os << (section.empty() ? "" : "\n") << "[" << sec << "]\n";
      section = sec;
    }
    os << name.substr(dot + 1) << " = " << get_option(o, config) << "\n";
  }
  return os.str();
}

}  // namespace dtune
