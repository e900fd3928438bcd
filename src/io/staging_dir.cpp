// StagingDir: write-then-rename for output folders.
#include "dtune/io/staging_dir.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <system_error>

#include "dtune/core/durable_file.h"
#include "dtune/core/error.h"

namespace fs = std::filesystem;

namespace dtune {

namespace {

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

}  // namespace

void remove_tree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

StagingDir::StagingDir(const std::string& final_dir) : final_(final_dir) {
  DTUNE_CHECK(!final_dir.empty(), "output folder name is empty: pass a folder path");
  fs::path final_path = fs::path(final_dir).lexically_normal();
  if (!final_path.has_filename()) final_path = final_path.parent_path();
  fs::path parent = final_path.has_parent_path() ? final_path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  DTUNE_CHECK(!ec, "cannot create folder ", parent.string(), ": ", ec.message());
  final_ = final_path.string();
  tmp_ = (parent / str(".", final_path.filename().string(), ".tmp-", ::getpid())).string();
  remove_tree(tmp_);  // leftover of an earlier crashed run with the same pid
  fs::create_directory(tmp_, ec);
  DTUNE_CHECK(!ec, "cannot create staging folder ", tmp_, ": ", ec.message(),
              " (is the output location writable?)");
}

StagingDir::~StagingDir() {
  if (committed_) return;
  remove_tree(tmp_);
}

void StagingDir::commit() {
  DTUNE_CHECK(!committed_, "StagingDir::commit called twice for ", final_);
  sync_tree(tmp_);  // every file, then the folders: durable before the rename publishes them
  std::error_code ec;
  std::string aside;
  if (fs::exists(final_, ec)) {
    aside = tmp_ + ".old";
    remove_tree(aside);
    rename_checked(final_, aside);
  }
  const int rc = file_sync().rename(tmp_, final_);
  if (rc != 0) {
    if (!aside.empty()) file_sync().rename(aside, final_);  // put the old copy back (best effort)
    throw Error(str("cannot rename ", tmp_, " to ", final_, ": ", std::strerror(rc),
                    " (is the output location writable?)"));
  }
  committed_ = true;
  sync_dir_checked(parent_dir(final_));  // the rename itself survives a power loss
  if (!aside.empty()) remove_tree(aside);
}

void copy_file_checked(const std::string& src, const std::string& dst) {
  std::error_code ec;
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
  DTUNE_CHECK(!ec, "cannot copy ", src, " to ", dst, ": ", ec.message());
}

}  // namespace dtune
