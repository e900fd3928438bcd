// User-facing errors: one exception type, thrown anywhere, caught once at the top of main.
// Messages say what was wrong, where (file, row, field, option) and how to fix it.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace dtune {

// An error the user can act on (bad input, bad option, failed I/O). main() prints what()
// and exits with kExitError.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Process exit codes, documented in docs/HPC.md. Slurm scripts requeue on kExitPreempted.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;       // a reported error (config, input, I/O, numerics)
constexpr int kExitUsage = 2;       // bad command line
constexpr int kExitPreempted = 75;  // checkpointed after SIGTERM/SIGUSR1; safe to requeue

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

// Builds a message from streamable pieces: throw Error(dtune::str("row ", n, ": ", why)).
// Qualify it as dtune::str: with a c10/at argument, ADL would also find c10::str.
template <typename... Args>
std::string str(const Args&... args) {
  return detail::concat(args...);
}

// A tensor shape as messages print it, as PyTorch prints torch.Size: "(2, 512, 576)", "()" for a
// scalar. Dims: any range of integers (at::IntArrayRef, std::vector<int64_t>).
template <typename Dims>
std::string shape_str(const Dims& dims) {
  std::string s = "(";
  bool first = true;
  for (const auto d : dims) {
    s += (first ? "" : ", ") + std::to_string(d);
    first = false;
  }
  return s + ")";
}

}  // namespace dtune

// DTUNE_CHECK(cond, pieces...): throw dtune::Error with the pieces when cond is false.
#define DTUNE_CHECK(cond, ...)                                   \
  do {                                                           \
    if (!(cond)) throw ::dtune::Error(::dtune::str(__VA_ARGS__)); \
  } while (0)
