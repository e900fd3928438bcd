// Durable publishing of outputs: fsync a file (or every file and folder of a tree), rename it
// into place, then fsync the parent folder, so after a power loss the old output or the complete
// new one is on disk, never a renamed but empty file. The POSIX calls go through FileSync so
// tests can record them and inject failures (leveldb's Env and fault_injection_test).
#pragma once

#include <string>

namespace dtune {

// The system calls of durable publishing. Each returns 0 or an errno value. Tests subclass it.
class FileSync {
 public:
  virtual ~FileSync() = default;
  // fsync(2) of the regular file at path (opened read-only).
  virtual int sync_file(const std::string& path);
  // fsync(2) of the folder at path (opened O_DIRECTORY): makes the names in it durable.
  virtual int sync_dir(const std::string& path);
  // rename(2).
  virtual int rename(const std::string& from, const std::string& to);
};

// The FileSync in use: POSIX unless a ScopedFileSync replaced it.
FileSync& file_sync();

// Routes every call below through fs while it lives (tests). Not thread-safe: replace it only
// while no other thread publishes.
class ScopedFileSync {
 public:
  explicit ScopedFileSync(FileSync& fs);
  ~ScopedFileSync();
  ScopedFileSync(const ScopedFileSync&) = delete;
  ScopedFileSync& operator=(const ScopedFileSync&) = delete;

 private:
  FileSync* previous_;
};

// Each throws dtune::Error naming the path and the system's reason when the call fails.
void sync_file_checked(const std::string& path);
// EINVAL and ENOTSUP are not errors: they mean the file system cannot fsync a folder (some
// FUSE and network file systems), where a folder's names are as durable as it makes them.
void sync_dir_checked(const std::string& path);
void rename_checked(const std::string& from, const std::string& to);

// fsyncs every regular file under dir, then each folder after its contents, dir itself last.
// Symlinks are not followed. Throws dtune::Error naming the first path that failed.
void sync_tree(const std::string& dir);

// Publishes a finished temp file or staging folder at final_path, durably: sync (sync_file_checked
// or sync_tree), rename onto final_path (atomic: same file system), sync_dir_checked of
// final_path's parent. Throws dtune::Error naming the path; tmp is left for the caller to remove.
void publish_file(const std::string& tmp, const std::string& final_path);
void publish_dir(const std::string& tmp, const std::string& final_path);

// The parent folder of path as a name to open ("." for a bare file name).
std::string parent_dir(const std::string& path);

}  // namespace dtune
