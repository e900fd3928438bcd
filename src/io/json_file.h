// Internal to dtune_io: reading JSON files and typed fields with errors that name file and key.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace dtune::io_detail {

// Parses the file (at most 64 MiB); throws dtune::Error naming the path on I/O or syntax errors.
nlohmann::json read_json_file(const std::string& path);
// Writes j (pretty, 2 spaces) to path, throwing dtune::Error on failure.
void write_json_file(const std::string& path, const nlohmann::json& j);

// Field accessors for a JSON object `j` read from `file`. The "require_" forms throw when the key
// is missing or has the wrong type; the "get_" forms return `fallback` when the key is missing
// or null and throw on a wrong type.
int64_t require_int(const nlohmann::json& j, const std::string& key, const std::string& file);
int64_t get_int(const nlohmann::json& j, const std::string& key, int64_t fallback, const std::string& file);
double get_double(const nlohmann::json& j, const std::string& key, double fallback, const std::string& file);
bool get_bool(const nlohmann::json& j, const std::string& key, bool fallback, const std::string& file);
std::string require_string(const nlohmann::json& j, const std::string& key, const std::string& file);
std::string get_string(const nlohmann::json& j, const std::string& key, const std::string& fallback,
                       const std::string& file);

}  // namespace dtune::io_detail
