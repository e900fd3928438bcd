// Private HDF5 helpers: error stack capture, handle closing, scalar attributes.
#include "h5_util.h"

#include <mutex>
#include <vector>

namespace dtune::h5 {
namespace {

herr_t collect_error(unsigned n, const H5E_error2_t* err, void* client) {
  auto* out = static_cast<ErrorStack*>(client);
  if (err->desc != nullptr && err->desc[0] != '\0') {
    const std::string desc = err->desc;
    // 1.10's wording: "data error detected by Fletcher32 checksum" (a data chunk),
    // "incorrect metadata checksum after all read attempts" (headers, B-trees, heaps).
    if (desc.find("checksum") != std::string::npos) out->checksum = true;
    // The stack is walked innermost first; keep the two innermost reasons, they are specific.
    if (n < 2) out->reasons += (out->reasons.empty() ? "" : "; ") + desc;
  }
  return 0;
}

}  // namespace

void silence_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

ErrorStack take_error_stack() {
  ErrorStack out;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, &collect_error, &out);
  H5Eclear2(H5E_DEFAULT);
  return out;
}

std::string error_stack() { return take_error_stack().reasons; }

void throw_error(const std::string& what, const char* file, int line) {
  const std::string reason = error_stack();
  throw Error(str(what, reason.empty() ? "" : " (HDF5: " + reason + ")", " [", file, ":", line,
                  "]"));
}

void throw_read_error(const std::string& file, const std::string& object,
                      const std::string& action, const char* src, int line) {
  throw_read_error(file, object, action, take_error_stack(), src, line);
}

void throw_read_error(const std::string& file, const std::string& object,
                      const std::string& action, const ErrorStack& stack, const char* src,
                      int line) {
  if (stack.checksum) {
    throw Error(str(file, ": corrupt (checksum mismatch in ", object,
                    "); re-run `dtune pretokenize` to write it again"));
  }
  throw Error(str(file, ": ", object, ": ", action, " failed",
                  stack.reasons.empty() ? "" : " (HDF5: " + stack.reasons + ")",
                  "; the file is truncated or corrupt, re-run `dtune pretokenize` [", src, ":",
                  line, "]"));
}

herr_t Handle::reset() {
  if (id_ < 0) return 0;
  herr_t rc = -1;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: rc = H5Fclose(id_); break;
    case H5I_GROUP: rc = H5Gclose(id_); break;
    case H5I_DATASET: rc = H5Dclose(id_); break;
    case H5I_DATASPACE: rc = H5Sclose(id_); break;
    case H5I_DATATYPE: rc = H5Tclose(id_); break;
    case H5I_GENPROP_LST: rc = H5Pclose(id_); break;
    case H5I_ATTR: rc = H5Aclose(id_); break;
    default: rc = H5Idec_ref(id_) < 0 ? -1 : 0; break;
  }
  id_ = -1;
  return rc;
}

namespace {

Handle make_string_type() {
  Handle type(H5_CHECK(H5Tcopy(H5T_C_S1), "HDF5: copying the string type"));
  H5_CHECK(H5Tset_size(type.get(), H5T_VARIABLE), "HDF5: variable-length string type");
  H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8), "HDF5: UTF-8 string type");
  return type;
}

void write_scalar(hid_t obj, const char* name, hid_t type, const void* value) {
  Handle space(H5_CHECK(H5Screate(H5S_SCALAR), "HDF5: scalar dataspace for attribute ", name));
  Handle attr(H5_CHECK(H5Acreate2(obj, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       "HDF5: creating attribute ", name));
  H5_CHECK(H5Awrite(attr.get(), type, value), "HDF5: writing attribute ", name);
}

// A root attribute read from the root group's object header (which a checksum covers whole).
std::string attr_object(const char* name) { return str("the root attributes (", name, ")"); }

Handle open_attr(hid_t obj, const char* name, const std::string& file) {
  DTUNE_CHECK(has_attr(obj, name, file), file, ": attribute '", name, "' is missing; the file was not ",
              "written by `dtune pretokenize` or is from an incompatible version; re-run it");
  return Handle(H5_READ_CHECK(H5Aopen(obj, name, H5P_DEFAULT), file, attr_object(name), "opening"));
}

void check_attr_class(hid_t attr, H5T_class_t want, const char* name, const std::string& file) {
  Handle type(H5_READ_CHECK(H5Aget_type(attr), file, attr_object(name), "reading the type"));
  DTUNE_CHECK(H5Tget_class(type.get()) == want, file, ": attribute '", name,
              "' has the wrong type; the file is corrupt or not from `dtune pretokenize`");
}

// A scalar attribute of class cls, converted by HDF5 to the memory type of T.
template <typename T>
T read_scalar_attr(hid_t obj, const char* name, const std::string& file, H5T_class_t cls,
                   hid_t memory_type) {
  Handle attr = open_attr(obj, name, file);
  check_attr_class(attr.get(), cls, name, file);
  T value{};
  H5_READ_CHECK(H5Aread(attr.get(), memory_type, &value), file, attr_object(name), "reading");
  return value;
}

}  // namespace

void write_attr(hid_t obj, const char* name, const std::string& value) {
  Handle type = make_string_type();
  const char* p = value.c_str();
  write_scalar(obj, name, type.get(), &p);
}

void write_attr(hid_t obj, const char* name, int64_t value) {
  write_scalar(obj, name, H5T_NATIVE_INT64, &value);
}

void write_attr(hid_t obj, const char* name, double value) {
  write_scalar(obj, name, H5T_NATIVE_DOUBLE, &value);
}

bool has_attr(hid_t obj, const char* name, const std::string& file) {
  return H5_READ_CHECK(H5Aexists(obj, name), file, attr_object(name), "looking up") > 0;
}

std::string read_attr_string(hid_t obj, const char* name, const std::string& file) {
  Handle attr = open_attr(obj, name, file);
  check_attr_class(attr.get(), H5T_STRING, name, file);
  Handle type = make_string_type();
  char* p = nullptr;
  H5_READ_CHECK(H5Aread(attr.get(), type.get(), &p), file, attr_object(name), "reading");
  std::string value = p != nullptr ? p : "";
  Handle space(H5_READ_CHECK(H5Aget_space(attr.get()), file, attr_object(name),
                             "reading the dataspace"));
  H5_READ_CHECK(H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, &p), file,
                attr_object(name), "freeing the string");
  return value;
}

int64_t read_attr_int(hid_t obj, const char* name, const std::string& file) {
  return read_scalar_attr<int64_t>(obj, name, file, H5T_INTEGER, H5T_NATIVE_INT64);
}

double read_attr_double(hid_t obj, const char* name, const std::string& file) {
  return read_scalar_attr<double>(obj, name, file, H5T_FLOAT, H5T_NATIVE_DOUBLE);
}

}  // namespace dtune::h5
