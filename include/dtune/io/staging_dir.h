// Atomic folder output: write everything into a hidden sibling folder, then rename it into place,
// so a reader never sees a half-written model, adapter or checkpoint folder.
#pragma once

#include <string>

namespace dtune {

// Usage: StagingDir s(out); write files under s.path(); s.commit();
// Destroying an uncommitted StagingDir removes its folder (an error path leaves nothing behind).
class StagingDir {
 public:
  // Creates "<parent>/.<name>.tmp-<pid>" beside `final_dir` (same file system, so rename is
  // atomic). The parent folder is created when missing.
  explicit StagingDir(const std::string& final_dir);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::string& path() const { return tmp_; }
  // fsyncs every file and folder in the staging folder (sync_tree), renames it to final_dir and
  // fsyncs final_dir's parent, so after a power loss final_dir is the old or the complete new
  // copy. An existing final_dir is first renamed aside and removed after the swap, so at every
  // instant one complete copy exists on disk. Throws dtune::Error naming the path when an fsync
  // or rename fails (the staging folder is then removed by the destructor).
  void commit();

 private:
  std::string final_;
  std::string tmp_;
  bool committed_ = false;
};

// Removes path and everything below it (no error when it does not exist); symlinks are removed,
// not followed. Use this instead of std::filesystem::remove_all: libtorch.so exports its own
// copy of the std::filesystem functions, and its remove_all crashes (jumps to address 0) when
// called from code built with GCC 12.
void remove_tree(const std::string& path);

// Copies src to dst (overwriting), throwing dtune::Error naming both paths on failure.
void copy_file_checked(const std::string& src, const std::string& dst);

}  // namespace dtune
