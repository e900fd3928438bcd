// Helpers for the io tests: temporary folders, small files, and running the Python oracles.
#pragma once

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "dtune/io/staging_dir.h"

namespace dtune::test {

// A fresh folder under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "dtune_io_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { remove_tree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs `DTUNE_PYTHON <args>` from the source root and returns its stdout; throws with the
// output when it exits non-zero. stderr is passed through so failures show in ctest logs.
inline std::string run_python(const std::string& args) {
  const std::string cmd = std::string("cd '") + DTUNE_SOURCE_DIR + "' && '" + DTUNE_PYTHON + "' " + args;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + cmd);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int rc = ::pclose(pipe);
  if (rc != 0) throw std::runtime_error("python failed (" + std::to_string(rc) + "): " + cmd + "\n" + out);
  return out;
}

// Runs a shell command, returning its exit status (0 = success) and capturing stdout+stderr.
inline int run_command(const std::string& cmd, std::string* output) {
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) output->append(buf.data(), n);
  const int rc = ::pclose(pipe);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace dtune::test

namespace dtune::test {

// Tiny base models + peft-made adapters (tests/io/oracles/peft_oracle.py make), built once per
// test process in a temporary folder that lives until exit.
inline const std::string& peft_fixtures() {
  static TempDir dir;
  static const bool made = [] {
    run_python("tests/io/oracles/peft_oracle.py make '" + dir.path() + "' >&2");
    return true;
  }();
  (void)made;
  return dir.path();
}

}  // namespace dtune::test
