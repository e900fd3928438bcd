// parse_safetensors_header: bounds and consistency checks for untrusted safetensors headers.
#include "dtune/io/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "dtune/core/error.h"

namespace dtune {

namespace {

using nlohmann::json;

// Deeper nesting than this is never a valid header; the cap keeps hostile input cheap.
constexpr int kMaxJsonDepth = 8;

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::vector<int64_t> parse_shape(const json& v, const std::string& file, const std::string& name) {
  DTUNE_CHECK(v.is_array(), file, ": tensor \"", name, "\": \"shape\" must be a list of integers");
  std::vector<int64_t> shape;
  for (const json& d : v) {
    DTUNE_CHECK(d.is_number_integer(), file, ": tensor \"", name, "\": shape entry ", d.dump(),
                " is not an integer");
    DTUNE_CHECK(d.is_number_unsigned() || d.get<int64_t>() >= 0, file, ": tensor \"", name,
                "\": negative dimension ", d.dump());
    DTUNE_CHECK(d.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX), file, ": tensor \"", name,
                "\": dimension ", d.dump(), " is too large");
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

uint64_t parse_offset(const json& v, const std::string& file, const std::string& name) {
  DTUNE_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), file, ": tensor \"",
              name, "\": data_offsets must be two non-negative integers, got ", v.dump());
  return v.get<uint64_t>();
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, size_t> kSizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
      {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, const std::string& file) {
  DTUNE_CHECK(size >= 8, file, ": file is ", size, " bytes, too short for a safetensors header (truncated "
              "download? re-create or re-download it)");
  const uint64_t n = read_u64_le(bytes);
  DTUNE_CHECK(n <= kMaxSafetensorsHeaderBytes, file, ": header size ", n, " exceeds the ",
              kMaxSafetensorsHeaderBytes, "-byte limit (not a safetensors file, or corrupted)");
  DTUNE_CHECK(n <= size - 8, file, ": header size ", n, " is larger than the file (", size,
              " bytes): the file is truncated or not a safetensors file");
  SafetensorsHeader h;
  h.data_offset = 8 + n;
  h.data_size = size - h.data_offset;

  // Duplicate top-level keys would let a later entry silently replace an earlier one.
  std::set<std::string> seen;
  const auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    DTUNE_CHECK(depth <= kMaxJsonDepth, file, ": header JSON is nested deeper than ", kMaxJsonDepth, " levels");
    if (event == json::parse_event_t::key && depth == 1) {
      const std::string& key = parsed.get_ref<const std::string&>();
      DTUNE_CHECK(seen.insert(key).second, file, ": header lists tensor \"", key, "\" twice");
    }
    return true;
  };
  json j;
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  try {
    j = json::parse(text, text + n, check);
  } catch (const json::exception& e) {
    throw Error(str(file, ": header is not valid JSON (", e.what(), "): the file is corrupted"));
  }
  DTUNE_CHECK(j.is_object(), file, ": header must be a JSON object, got ", j.type_name());

  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      DTUNE_CHECK(v.is_object(), file, ": \"__metadata__\" must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        DTUNE_CHECK(m.value().is_string(), file, ": __metadata__[\"", m.key(), "\"] must be a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    DTUNE_CHECK(v.is_object(), file, ": tensor \"", name, "\": entry must be an object");
    DTUNE_CHECK(v.contains("dtype") && v.at("dtype").is_string(), file, ": tensor \"", name,
                "\": missing string \"dtype\"");
    DTUNE_CHECK(v.contains("shape"), file, ": tensor \"", name, "\": missing \"shape\"");
    DTUNE_CHECK(v.contains("data_offsets") && v.at("data_offsets").is_array() && v.at("data_offsets").size() == 2,
                file, ": tensor \"", name, "\": \"data_offsets\" must be [begin, end]");
    TensorEntry e;
    e.dtype = v.at("dtype").get<std::string>();
    const size_t itemsize = safetensors_dtype_size(e.dtype);
    DTUNE_CHECK(itemsize > 0, file, ": tensor \"", name, "\": unknown dtype \"", e.dtype, "\"");
    e.shape = parse_shape(v.at("shape"), file, name);
    uint64_t nbytes = itemsize;
    for (int64_t d : e.shape) {
      DTUNE_CHECK(!__builtin_mul_overflow(nbytes, static_cast<uint64_t>(d), &nbytes), file, ": tensor \"", name,
                  "\": element count overflows");
    }
    e.begin = parse_offset(v.at("data_offsets")[0], file, name);
    e.end = parse_offset(v.at("data_offsets")[1], file, name);
    DTUNE_CHECK(e.begin <= e.end && e.end <= h.data_size, file, ": tensor \"", name, "\": byte range [", e.begin,
                ", ", e.end, ") lies outside the data section (", h.data_size, " bytes): file truncated or corrupted");
    DTUNE_CHECK(e.end - e.begin == nbytes, file, ": tensor \"", name, "\": byte range holds ", e.end - e.begin,
                " bytes but dtype ", e.dtype, " and its shape need ", nbytes);
    auto [pos, inserted] = h.entries.emplace(name, std::move(e));
    ranges.push_back({pos->second.begin, pos->second.end, &pos->first});
  }

  // Sorted by begin, non-empty ranges must tile [0, data_size) exactly.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (const Range& r : ranges) {
    if (r.begin == r.end) continue;  // empty tensors take no bytes
    DTUNE_CHECK(r.begin >= covered, file, ": tensor \"", *r.name, "\": byte range [", r.begin, ", ", r.end,
                ") overlaps another tensor's data");
    DTUNE_CHECK(r.begin == covered, file, ": bytes [", covered, ", ", r.begin, ") of the data section belong to "
                "no tensor (corrupted header)");
    covered = r.end;
  }
  DTUNE_CHECK(covered == h.data_size, file, ": data section has ", h.data_size, " bytes but the tensors cover ",
              covered, " (trailing garbage or corrupted header)");
  return h;
}

}  // namespace dtune
