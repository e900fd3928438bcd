// Helpers shared by the libFuzzer harnesses under tools/: a private scratch folder for inputs
// that dtune reads from a fixed file name in a folder (config.json, tokenizer_config.json), and
// an invariant check that aborts (libFuzzer then saves the input as a crash).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace dtune::fuzz {

// Aborts with the broken invariant's name: libFuzzer reports the input that broke it.
inline void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz harness: invariant broken: %s\n", what);
  std::abort();
}

// A folder of this process under /dev/shm (memory) or $TMPDIR, removed at exit.
inline const std::string& scratch_dir() {
  // Never destroyed: the atexit handler below still reads it.
  static const std::string* const dir = [] {
    const std::filesystem::path base = std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                                           : std::filesystem::temp_directory_path();
    auto* templ = new std::string((base / "dtune-fuzz-XXXXXX").string());
    check(::mkdtemp(templ->data()) != nullptr, "mkdtemp");
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return templ;
  }();
  return *dir;
}

// Writes bytes to scratch_dir()/name and returns its path.
inline std::string write_scratch_file(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  check(static_cast<bool>(out), "writing the input file");
  return path;
}

}  // namespace dtune::fuzz
