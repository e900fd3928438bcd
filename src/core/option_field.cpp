// Option names as the caller spells them, and the two shared checks (see option_field.h).
#include "dtune/core/option_field.h"

namespace dtune {

std::string flag_name(std::string_view key) {
  std::string out(key);
  for (char& c : out)
    if (c == '_') c = '-';
  return out;
}

std::string OptionNames::operator()(std::string_view key) const {
  return prefix_ + (dashes_ ? flag_name(key) : std::string(key));
}

void require_option_one_of(const std::string& value, const std::string& name,
                           std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (value == a) return;
  std::string list;
  for (const char* a : allowed) list += (list.empty() ? "" : " | ") + std::string(a);
  throw Error(str("option ", name, " must be one of ", list, ", got '", value, "'"));
}

}  // namespace dtune
