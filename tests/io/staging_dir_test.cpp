// StagingDir: commit() fsyncs every file and folder of the staging folder before the rename that
// publishes it and the parent folder after it (recorded through RecordingFileSync); a failing
// fsync or rename is a dtune::Error naming the path and publishes nothing, and an existing
// output stays whole.
#include "dtune/io/staging_dir.h"

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <filesystem>
#include <string>

#include "../core/recording_file_sync.h"
#include "dtune/core/error.h"
#include "io_test_util.h"

namespace fs = std::filesystem;

namespace dtune {
namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(commit_syncs_files_then_folders_then_renames_then_syncs_the_parent) {
  test::TempDir dir;
  const std::string out = dir / "adapter";
  test::RecordingFileSync rec;
  StagingDir staging(out);
  const std::string tmp = staging.path();
  fs::create_directories(tmp + "/sub");
  test::write_file(tmp + "/adapter_config.json", "{}");
  test::write_file(tmp + "/sub/adapter_model.safetensors", "weights");
  staging.commit();
  const int config = rec.index_of("sync_file " + tmp + "/adapter_config.json");
  const int weights = rec.index_of("sync_file " + tmp + "/sub/adapter_model.safetensors");
  const int sub = rec.index_of("sync_dir " + tmp + "/sub");
  const int top = rec.index_of("sync_dir " + tmp);
  const int rename = rec.index_of("rename " + tmp + " " + out);
  const int parent = rec.index_of("sync_dir " + dir.path());
  BOOST_TEST_INFO(rec.calls.size() << " calls");
  BOOST_TEST((config >= 0 && weights >= 0 && sub >= 0 && top >= 0 && rename >= 0 && parent >= 0));
  BOOST_TEST(weights < sub);
  BOOST_TEST(config < top);
  BOOST_TEST(sub < top);
  BOOST_TEST(top < rename);
  BOOST_TEST(rename < parent);
  BOOST_TEST(test::read_file(out + "/sub/adapter_model.safetensors") == "weights");
}

BOOST_AUTO_TEST_CASE(failed_fsync_keeps_the_old_output_and_leaves_no_staging_folder) {
  test::TempDir dir;
  const std::string out = dir / "merged";
  fs::create_directories(out);
  test::write_file(out + "/model.safetensors", "old");
  test::RecordingFileSync rec;
  std::string tmp;
  try {
    StagingDir staging(out);
    tmp = staging.path();
    test::write_file(tmp + "/model.safetensors", "new");
    rec.fail_next("sync_file " + tmp + "/model.safetensors", EIO);
    staging.commit();
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST_INFO(e.what());
    BOOST_TEST(contains(e.what(), "cannot fsync " + tmp + "/model.safetensors: Input/output error"));
  }
  BOOST_TEST(test::read_file(out + "/model.safetensors") == "old");
  BOOST_TEST(!fs::exists(tmp));
}

BOOST_AUTO_TEST_CASE(failed_rename_puts_the_old_output_back) {
  test::TempDir dir;
  const std::string out = dir / "merged";
  fs::create_directories(out);
  test::write_file(out + "/model.safetensors", "old");
  test::RecordingFileSync rec;
  try {
    StagingDir staging(out);
    test::write_file(staging.path() + "/model.safetensors", "new");
    rec.fail_next("rename " + staging.path() + " ", ENOSPC);  // the second rename: staging -> out
    staging.commit();
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST_INFO(e.what());
    BOOST_TEST(contains(e.what(), "to " + out + ": No space left on device"));
  }
  BOOST_TEST(test::read_file(out + "/model.safetensors") == "old");
}

}  // namespace dtune
