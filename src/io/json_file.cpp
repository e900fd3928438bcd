// JSON file reading and typed field access with file/key-naming errors.
#include "json_file.h"

#include <fstream>
#include <sstream>

#include "dtune/core/error.h"

namespace dtune::io_detail {

namespace {
constexpr std::streamoff kMaxJsonBytes = 64LL << 20;

std::string type_hint(const nlohmann::json& v) { return v.type_name(); }
}  // namespace

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DTUNE_CHECK(in.good(), "cannot open ", path, " (does the file exist and is it readable?)");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  DTUNE_CHECK(size >= 0 && size <= kMaxJsonBytes, path, ": ", size, " bytes is not a plausible JSON config (limit ",
              kMaxJsonBytes, ")");
  in.seekg(0);
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), size);
  DTUNE_CHECK(in.good() || in.eof(), "cannot read ", path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(str(path, " is not valid JSON: ", e.what()));
  }
}

void write_json_file(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  DTUNE_CHECK(out.good(), "cannot create ", path);
  out << j.dump(2) << "\n";
  out.close();
  DTUNE_CHECK(!out.fail(), "cannot write ", path, " (disk full?)");
}

int64_t require_int(const nlohmann::json& j, const std::string& key, const std::string& file) {
  DTUNE_CHECK(j.contains(key) && !j.at(key).is_null(), file, ": missing required key \"", key, "\"");
  return get_int(j, key, 0, file);
}

int64_t get_int(const nlohmann::json& j, const std::string& key, int64_t fallback, const std::string& file) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  const auto& v = j.at(key);
  DTUNE_CHECK(v.is_number_integer(), file, ": key \"", key, "\" must be an integer, got ", type_hint(v), " ",
              v.dump());
  if (v.is_number_unsigned()) {
    DTUNE_CHECK(v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX), file, ": key \"", key, "\" is too large");
  }
  return v.get<int64_t>();
}

double get_double(const nlohmann::json& j, const std::string& key, double fallback, const std::string& file) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  const auto& v = j.at(key);
  DTUNE_CHECK(v.is_number(), file, ": key \"", key, "\" must be a number, got ", type_hint(v), " ", v.dump());
  return v.get<double>();
}

bool get_bool(const nlohmann::json& j, const std::string& key, bool fallback, const std::string& file) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  const auto& v = j.at(key);
  DTUNE_CHECK(v.is_boolean(), file, ": key \"", key, "\" must be true or false, got ", v.dump());
  return v.get<bool>();
}

std::string require_string(const nlohmann::json& j, const std::string& key, const std::string& file) {
  DTUNE_CHECK(j.contains(key) && !j.at(key).is_null(), file, ": missing required key \"", key, "\"");
  return get_string(j, key, "", file);
}

std::string get_string(const nlohmann::json& j, const std::string& key, const std::string& fallback,
                       const std::string& file) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  const auto& v = j.at(key);
  DTUNE_CHECK(v.is_string(), file, ": key \"", key, "\" must be a string, got ", type_hint(v), " ", v.dump());
  return v.get<std::string>();
}

}  // namespace dtune::io_detail
