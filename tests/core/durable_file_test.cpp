// durable_file: publish_file / publish_dir fsync every file, then the folders, before the rename
// that publishes them, and fsync the parent after it; each failing fsync or rename is a
// dtune::Error naming the path, with nothing published. Calls are recorded through
// RecordingFileSync (the real calls are made too).
#include "dtune/core/durable_file.h"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>

#include "dtune/core/error.h"
#include "recording_file_sync.h"

namespace fs = std::filesystem;

namespace {

struct Scratch {
  fs::path dir = fs::temp_directory_path() / ("dtune_durable_" + std::to_string(::getpid()));
  Scratch() {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string at(const std::string& name) const { return (dir / name).string(); }
};

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string error_of(void (*f)(const std::string&, const std::string&), const std::string& a,
                     const std::string& b) {
  try {
    f(a, b);
  } catch (const dtune::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(publish_file_syncs_the_file_then_renames_then_syncs_the_folder) {
  Scratch s;
  write(s.at("f.tmp"), "data");
  dtune::test::RecordingFileSync rec;
  dtune::publish_file(s.at("f.tmp"), s.at("f"));
  const std::vector<std::string> want = {"sync_file " + s.at("f.tmp"),
                                         "rename " + s.at("f.tmp") + " " + s.at("f"),
                                         "sync_dir " + s.dir.string()};
  BOOST_TEST(rec.calls == want, boost::test_tools::per_element());
  BOOST_TEST(fs::exists(s.at("f")));
  BOOST_TEST(!fs::exists(s.at("f.tmp")));
}

BOOST_AUTO_TEST_CASE(publish_dir_syncs_every_file_before_its_folder_and_all_before_the_rename) {
  Scratch s;
  const std::string tmp = s.at(".out.tmp");
  fs::create_directories(tmp + "/sub");
  write(tmp + "/a.json", "{}");
  write(tmp + "/sub/b.bin", "bytes");
  fs::create_symlink(tmp + "/a.json", tmp + "/link");  // not followed, not synced
  dtune::test::RecordingFileSync rec;
  dtune::publish_dir(tmp, s.at("out"));
  BOOST_TEST_INFO_SCOPE(rec.calls.size());
  BOOST_REQUIRE(rec.calls.size() == 6u);  // 2 files, 2 folders, rename, parent
  const int a = rec.index_of("sync_file " + tmp + "/a.json");
  const int b = rec.index_of("sync_file " + tmp + "/sub/b.bin");
  const int sub = rec.index_of("sync_dir " + tmp + "/sub");
  const int top = rec.index_of("sync_dir " + tmp);
  const int ren = rec.index_of("rename " + tmp + " " + s.at("out"));
  const int parent = rec.index_of("sync_dir " + s.dir.string());
  BOOST_TEST((a >= 0 && b >= 0 && sub >= 0 && top >= 0 && ren >= 0 && parent >= 0));
  BOOST_TEST(b < sub);    // a folder after its files
  BOOST_TEST(sub < top);  // and after its subfolders
  BOOST_TEST(a < top);
  BOOST_TEST(top < ren);  // everything durable before the rename publishes it
  BOOST_TEST(ren < parent);
  BOOST_TEST(fs::exists(s.at("out/sub/b.bin")));
}

BOOST_AUTO_TEST_CASE(failed_fsync_stops_before_the_rename_and_names_the_path) {
  Scratch s;
  const std::string tmp = s.at(".out.tmp");
  fs::create_directories(tmp);
  write(tmp + "/weights.bin", "w");
  dtune::test::RecordingFileSync rec;
  rec.fail_next("sync_file " + tmp + "/weights.bin", EIO);
  const std::string msg = error_of(dtune::publish_dir, tmp, s.at("out"));
  BOOST_TEST_INFO(msg);
  BOOST_TEST(contains(msg, "cannot fsync " + tmp + "/weights.bin: Input/output error"));
  BOOST_TEST(!fs::exists(s.at("out")));  // nothing published
  BOOST_TEST(rec.index_of("rename " + tmp + " " + s.at("out")) == -1);

  write(s.at("f.tmp"), "x");
  rec.fail_next("sync_file " + s.at("f.tmp"), ENOSPC);
  BOOST_TEST(contains(error_of(dtune::publish_file, s.at("f.tmp"), s.at("f")),
                      "cannot fsync " + s.at("f.tmp") + ": No space left on device"));
  BOOST_TEST(!fs::exists(s.at("f")));
}

BOOST_AUTO_TEST_CASE(failed_rename_and_failed_folder_fsync_are_errors) {
  Scratch s;
  write(s.at("f.tmp"), "x");
  dtune::test::RecordingFileSync rec;
  rec.fail_next("rename ", EXDEV);
  BOOST_TEST(contains(error_of(dtune::publish_file, s.at("f.tmp"), s.at("f")),
                      "cannot rename " + s.at("f.tmp") + " to " + s.at("f")));
  BOOST_TEST(!fs::exists(s.at("f")));

  rec.fail_next("sync_dir ", EIO);
  BOOST_TEST(contains(error_of(dtune::publish_file, s.at("f.tmp"), s.at("f")),
                      "cannot fsync folder " + s.dir.string() + ": Input/output error"));

  write(s.at("g.tmp"), "x");  // a file system that cannot fsync folders is not an error
  rec.fail_next("sync_dir ", EINVAL);
  BOOST_CHECK_NO_THROW(dtune::publish_file(s.at("g.tmp"), s.at("g")));
}

BOOST_AUTO_TEST_CASE(real_calls_report_missing_paths) {
  Scratch s;  // no recorder: the POSIX FileSync
  BOOST_TEST(contains(error_of(dtune::publish_file, s.at("absent.tmp"), s.at("absent")),
                      "cannot fsync " + s.at("absent.tmp") + ": No such file or directory"));
  BOOST_TEST(dtune::parent_dir("a/b/c") == "a/b");
  BOOST_TEST(dtune::parent_dir("c") == ".");
  BOOST_TEST(dtune::parent_dir("/c") == "/");
  BOOST_TEST(dtune::parent_dir("out/ck/") == "out");
}
