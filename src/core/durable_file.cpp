// Durable publishing: fsync, rename, fsync the folder; see durable_file.h.
#include "dtune/core/durable_file.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "dtune/core/error.h"

namespace dtune {
namespace {

FileSync& posix_file_sync() {
  static FileSync posix;
  return posix;
}

FileSync* g_current = nullptr;  // nullptr = POSIX

int fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errno;
  const int rc = ::fsync(fd) == 0 ? 0 : errno;
  const int closed = ::close(fd) == 0 ? 0 : errno;
  return rc != 0 ? rc : closed;
}

// nftw's callback cannot capture: the walk's first failure (path and message) goes here.
thread_local std::string* t_tree_error = nullptr;

int sync_entry(const char* path, const struct stat*, int type, struct FTW*) {
  try {
    if (type == FTW_F) {
      sync_file_checked(path);
    } else if (type == FTW_DP) {
      sync_dir_checked(path);
    } else if (type == FTW_DNR || type == FTW_NS) {
      throw Error(str("cannot read ", path, " to fsync it (permissions?)"));
    }  // FTW_SL, FTW_SLN: a symlink's target is not ours to sync
  } catch (const Error& e) {
    *t_tree_error = e.what();
    return 1;  // stops the walk
  }
  return 0;
}

}  // namespace

int FileSync::sync_file(const std::string& path) { return fsync_path(path, O_RDONLY); }

int FileSync::sync_dir(const std::string& path) { return fsync_path(path, O_RDONLY | O_DIRECTORY); }

int FileSync::rename(const std::string& from, const std::string& to) {
  return std::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

FileSync& file_sync() { return g_current != nullptr ? *g_current : posix_file_sync(); }

ScopedFileSync::ScopedFileSync(FileSync& fs) : previous_(g_current) { g_current = &fs; }

ScopedFileSync::~ScopedFileSync() { g_current = previous_; }

void sync_file_checked(const std::string& path) {
  const int rc = file_sync().sync_file(path);
  DTUNE_CHECK(rc == 0, "cannot fsync ", path, ": ", std::strerror(rc),
              " (the data may not be on disk; check the disk and free space, then write it again)");
}

void sync_dir_checked(const std::string& path) {
  const int rc = file_sync().sync_dir(path);
  DTUNE_CHECK(rc == 0 || rc == EINVAL || rc == ENOTSUP, "cannot fsync folder ", path, ": ",
              std::strerror(rc), " (its new entries may not survive a power loss; check the disk)");
}

void rename_checked(const std::string& from, const std::string& to) {
  const int rc = file_sync().rename(from, to);
  DTUNE_CHECK(rc == 0, "cannot rename ", from, " to ", to, ": ", std::strerror(rc),
              " (is the destination writable and on the same file system?)");
}

void sync_tree(const std::string& dir) {
  std::string error;
  t_tree_error = &error;
  // FTW_DEPTH: a folder is visited after everything in it; FTW_PHYS: symlinks not followed.
  const int rc = ::nftw(dir.c_str(), sync_entry, 16, FTW_DEPTH | FTW_PHYS);
  const int walk_errno = errno;
  t_tree_error = nullptr;
  if (!error.empty()) throw Error(error);
  DTUNE_CHECK(rc == 0, "cannot walk ", dir, " to fsync it: ", std::strerror(walk_errno));
}

std::string parent_dir(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

void publish_file(const std::string& tmp, const std::string& final_path) {
  sync_file_checked(tmp);
  rename_checked(tmp, final_path);
  sync_dir_checked(parent_dir(final_path));
}

void publish_dir(const std::string& tmp, const std::string& final_path) {
  sync_tree(tmp);
  rename_checked(tmp, final_path);
  sync_dir_checked(parent_dir(final_path));
}

}  // namespace dtune
