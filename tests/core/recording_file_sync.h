// Test helper: a FileSync that records every call ("sync_file PATH", "sync_dir PATH",
// "rename FROM TO") and makes the calls for real, or fails the first call whose record starts
// with a given prefix (leveldb fault_injection_test style). Installed for its lifetime.
#pragma once

#include <string>
#include <vector>

#include "dtune/core/durable_file.h"

namespace dtune::test {

class RecordingFileSync : public FileSync {
 public:
  RecordingFileSync() : scope_(*this) {}

  // The first later call whose record starts with prefix returns error (errno value) instead.
  void fail_next(const std::string& prefix, int error) {
    fail_prefix_ = prefix;
    fail_errno_ = error;
  }

  int sync_file(const std::string& path) override {
    return record("sync_file " + path, [&] { return FileSync::sync_file(path); });
  }
  int sync_dir(const std::string& path) override {
    return record("sync_dir " + path, [&] { return FileSync::sync_dir(path); });
  }
  int rename(const std::string& from, const std::string& to) override {
    return record("rename " + from + " " + to, [&] { return FileSync::rename(from, to); });
  }

  std::vector<std::string> calls;

  // Index of the first call equal to entry, or -1.
  int index_of(const std::string& entry) const {
    for (size_t i = 0; i < calls.size(); ++i) {
      if (calls[i] == entry) return static_cast<int>(i);
    }
    return -1;
  }

 private:
  template <typename F>
  int record(const std::string& entry, F real) {
    calls.push_back(entry);
    if (!fail_prefix_.empty() && entry.compare(0, fail_prefix_.size(), fail_prefix_) == 0) {
      fail_prefix_.clear();
      return fail_errno_;
    }
    return real();
  }

  ScopedFileSync scope_;
  std::string fail_prefix_;
  int fail_errno_ = 0;
};

}  // namespace dtune::test
