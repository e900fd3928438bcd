// Private HDF5 helpers for src/data: the H5_CHECK macro, an owning handle, and attribute I/O.
// HDF5's own error printing is switched off; failures become dtune::Error with its stack.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>

#include "dtune/core/error.h"

namespace dtune::h5 {

// Turns off HDF5's automatic stderr dump (idempotent, call before any HDF5 use).
void silence_errors();

// The current HDF5 error stack, read and cleared at once.
struct ErrorStack {
  std::string reasons;  // the two innermost reasons as one line ("" when the stack is empty)
  bool checksum = false;  // some entry reports a failed checksum (Fletcher-32 on a data chunk,
                          // or the metadata checksum of an object header, B-tree, heap, ...)
};
ErrorStack take_error_stack();
// The current HDF5 error stack, innermost reason last, as one line ("" when empty).
std::string error_stack();
[[noreturn]] void throw_error(const std::string& what, const char* file, int line);

// For a failed HDF5 call while READING `file`. A checksum failure on the stack throws
// "FILE: corrupt (checksum mismatch in OBJECT); re-run `dtune pretokenize`"; any other failure
// throws "FILE: OBJECT: ACTION failed (HDF5: reason); the file is truncated or corrupt, re-run
// `dtune pretokenize` [src:line]". object names what was read ("/train/tokens chunk 3",
// "root attribute vocab_size"), action what was done ("reading elements [0, 9)").
[[noreturn]] void throw_read_error(const std::string& file, const std::string& object,
                                   const std::string& action, const char* src, int line);
// The same with a stack already taken by take_error_stack().
[[noreturn]] void throw_read_error(const std::string& file, const std::string& object,
                                   const std::string& action, const ErrorStack& stack,
                                   const char* src, int line);

// Owns one HDF5 identifier (file, group, dataset, dataspace, datatype, property list,
// attribute) and closes it with the matching H5?close.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      o.id_ = -1;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now; returns the close status (negative on failure, e.g. a failed final flush).
  herr_t reset();

 private:
  hid_t id_ = -1;
};

// Attributes on an object (the file root here). Readers throw naming the attribute and file.
void write_attr(hid_t obj, const char* name, const std::string& value);
void write_attr(hid_t obj, const char* name, int64_t value);
void write_attr(hid_t obj, const char* name, double value);
bool has_attr(hid_t obj, const char* name, const std::string& file);
std::string read_attr_string(hid_t obj, const char* name, const std::string& file);
int64_t read_attr_int(hid_t obj, const char* name, const std::string& file);
double read_attr_double(hid_t obj, const char* name, const std::string& file);

}  // namespace dtune::h5

// H5_CHECK(expr, pieces...): expr is an HDF5 call returning hid_t/herr_t/htri_t; a negative
// result throws dtune::Error with the pieces, HDF5's reason and this source file:line.
#define H5_CHECK(expr, ...)                                                           \
  ([&]() {                                                                            \
    const auto h5_result_ = (expr);                                                   \
    if (h5_result_ < 0) ::dtune::h5::throw_error(::dtune::str(__VA_ARGS__), __FILE__, __LINE__); \
    return h5_result_;                                                                \
  }())

// H5_READ_CHECK(expr, file, object, pieces...): as H5_CHECK for a call that reads `file`;
// a negative result goes through dtune::h5::throw_read_error (checksum failures -> "corrupt").
#define H5_READ_CHECK(expr, file, object, ...)                                        \
  ([&]() {                                                                            \
    const auto h5_result_ = (expr);                                                   \
    if (h5_result_ < 0)                                                               \
      ::dtune::h5::throw_read_error((file), (object), ::dtune::str(__VA_ARGS__), __FILE__, \
                                    __LINE__);                                        \
    return h5_result_;                                                                \
  }())
