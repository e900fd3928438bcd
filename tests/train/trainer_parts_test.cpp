// The trainer's parts against their references: the LR schedule against transformers'
// get_scheduler, AdamW against torch.optim.AdamW, the fp16 loss scaler against GradScaler's
// rules, the flat LoRA bucket, TensorBoard files read back by the tensorboard package (also
// after a resume drops the events past the checkpoint), checkpoints fsync'ed before the rename.
#include <boost/test/unit_test.hpp>

// GCC 12 reports a false -Wrestrict in std::string concatenation at -O3 (GCC bug 105329).
#pragma GCC diagnostic ignored "-Wrestrict"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "../core/recording_file_sync.h"
#include "dtune/core/error.h"
#include "dtune/dist/communicator.h"
#include "dtune/io/safetensors.h"
#include "dtune/train/adamw.h"
#include "dtune/train/checkpoint.h"
#include "dtune/train/loss_scaler.h"
#include "dtune/train/lr_schedule.h"
#include "dtune/train/param_bucket.h"
#include "dtune/train/tensorboard_writer.h"

namespace fs = std::filesystem;

namespace {

std::string run(const std::string& cmd) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  BOOST_REQUIRE(p);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p.get())) > 0) out.append(buf, n);
  return out;
}

std::string oracle(const std::string& args) {
  return run(std::string(DTUNE_PYTHON) + " " + DTUNE_SOURCE_DIR + "/scripts/train_oracle.py " + args);
}

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("dtune_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

BOOST_AUTO_TEST_CASE(lr_schedule_matches_transformers) {
  struct Case {
    std::string kind;
    int64_t total, warmup_steps;
    double ratio;
  };
  for (const Case& c : {Case{"linear", 37, 0, 0.03}, Case{"linear", 10, 3, 0.0}, Case{"cosine", 25, 0, 0.1},
                        Case{"cosine", 7, 0, 0.0}, Case{"constant", 12, 2, 0.0}, Case{"linear", 1, 0, 0.03}}) {
    const auto want = nlohmann::json::parse(oracle("schedule " + c.kind + " " + std::to_string(c.total) + " " +
                                                   std::to_string(c.warmup_steps) + " " + std::to_string(c.ratio)));
    const dtune::LrSchedule s(c.kind, 1e-3, c.total, c.warmup_steps, c.ratio);
    BOOST_REQUIRE_EQUAL(want.size(), static_cast<size_t>(c.total));
    for (int64_t i = 0; i < c.total; ++i) {
      // Both compute the same double expression; 1e-15 absorbs last-bit differences in cos().
      BOOST_TEST(std::abs(s.lr(i) - want[i].get<double>()) <= 1e-15, c.kind << " step " << i << ": " << s.lr(i)
                                                                          << " vs " << want[i].get<double>());
    }
  }
}

BOOST_AUTO_TEST_CASE(adamw_matches_torch) {
  const fs::path dir = temp_dir("adamw");
  const std::string file = (dir / "adamw.safetensors").string();
  oracle("adamw " + file);
  const auto ref = dtune::SafetensorsFile::open(file);
  auto load = [&](const std::string& n) { return ref.load(n, at::kFloat, c10::Device(c10::kCPU)); };
  at::Tensor params = load("p0").clone();
  at::Tensor grads = at::zeros_like(params);
  dtune::AdamWOptions o;  // lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0.01 as in the oracle
  dtune::AdamW opt(params, grads, o);
  // Names built with append: GCC 12 reports a false -Wstringop-overflow on `"p" + std::string`
  // inlined here when <string> comes from the precompiled header (GCC bug 105329).
  for (int i = 0; i < 3; ++i) {
    grads.copy_(load(std::string("grad").append(std::to_string(i))));
    opt.step(1e-3);
    // Same single-tensor formula and kernels as torch.optim.AdamW(foreach=False): bitwise.
    BOOST_TEST(at::equal(params, load(std::string("p").append(std::to_string(i + 1)))), "step " << i);
  }
  BOOST_TEST(at::equal(opt.exp_avg(), load("exp_avg")));
  BOOST_TEST(at::equal(opt.exp_avg_sq(), load("exp_avg_sq")));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(loss_scaler_follows_grad_scaler_rules) {
  dtune::LossScaler s(true, 65536.0, 3);
  BOOST_TEST(s.scale() == 65536.0);
  BOOST_TEST(!s.update(true));  // overflow: skip, halve
  BOOST_TEST(s.scale() == 32768.0);
  BOOST_TEST(s.update(false));
  BOOST_TEST(s.update(false));
  BOOST_TEST(s.scale() == 32768.0);
  BOOST_TEST(s.update(false));  // third clean step in a row: double
  BOOST_TEST(s.scale() == 65536.0);
  BOOST_TEST(s.update(false));
  BOOST_TEST(!s.update(true));  // an overflow resets the clean-step count
  BOOST_TEST(s.update(false));
  BOOST_TEST(s.update(false));
  BOOST_TEST(s.scale() == 32768.0);
  dtune::LossScaler restored(true, 1.0, 3);
  restored.load_state(s.state());
  BOOST_TEST(restored.scale() == 32768.0);
  BOOST_TEST(restored.update(false));  // continues the count: this is the third clean step
  BOOST_TEST(restored.scale() == 65536.0);
  dtune::LossScaler off(false, 65536.0, 3);
  BOOST_TEST(off.scale() == 1.0);
  BOOST_TEST(!off.update(true));  // bf16/fp32: non-finite steps are still skipped
}

BOOST_AUTO_TEST_CASE(param_bucket_is_one_flat_buffer) {
  at::Tensor a = at::randn({4, 8}).requires_grad_();
  at::Tensor b = at::randn({16, 4}).requires_grad_();
  const at::Tensor a0 = a.detach().clone(), b0 = b.detach().clone();
  dtune::ParamBucket bucket({{"a", a}, {"b", b}});
  BOOST_TEST(bucket.numel() == 96);
  BOOST_TEST(at::equal(a, a0));  // values kept
  BOOST_TEST(at::equal(bucket.params().narrow(0, 32, 64).view({16, 4}), b0));
  // The tensors now live in the bucket: an update of the bucket is seen through them.
  { at::NoGradGuard g; bucket.params().add_(1.0); }
  BOOST_TEST(at::equal(a, a0 + 1.0));
  // Gradients accumulate into the flat gradient buffer, in place, across backward calls.
  const at::Tensor x = at::randn({3, 8});
  (x.matmul(a.t()).matmul(b.t())).sum().backward();
  (x.matmul(a.t()).matmul(b.t())).sum().backward();
  bucket.copy_grads_into_bucket();
  BOOST_TEST(a.grad().data_ptr() == bucket.grads().data_ptr());
  const at::Tensor ga = a.grad().clone();
  at::Tensor a2 = a.detach().clone().requires_grad_(), b2 = b.detach().clone().requires_grad_();
  (2 * x.matmul(a2.t()).matmul(b2.t())).sum().backward();
  BOOST_TEST(at::allclose(ga, a2.grad(), 1e-5, 1e-5));
  bucket.zero_grads();
  BOOST_TEST(a.grad().abs().sum().item<double>() == 0.0);
}

BOOST_AUTO_TEST_CASE(crc32c_known_vector) {
  // RFC 3720 (iSCSI) check value of CRC-32C over "123456789".
  BOOST_TEST(dtune::crc32c("123456789", 9) == 0xE3069283u);
}

namespace {

// {tag: [[step, value], ...]} of the event files in dir, as the tensorboard package reads them.
nlohmann::json read_tensorboard(const fs::path& dir) {
  const std::string py =
      "from tensorboard.backend.event_processing.event_accumulator import EventAccumulator as E\n"
      "import json,sys\n"
      "a=E(sys.argv[1], size_guidance={'scalars': 0}); a.Reload()\n"
      "print(json.dumps({t:[[e.step,e.value] for e in a.Scalars(t)] for t in a.Tags()['scalars']}))\n";
  const fs::path script = dir.parent_path() / (dir.filename().string() + "_read.py");
  std::FILE* f = std::fopen(script.c_str(), "w");
  std::fputs(py.c_str(), f);
  std::fclose(f);
  const std::string out = run(std::string(DTUNE_PYTHON) + " " + script.string() + " " + dir.string() + " 2>/dev/null");
  fs::remove(script);
  return nlohmann::json::parse(out);
}

}  // namespace

BOOST_AUTO_TEST_CASE(tensorboard_events_read_back) {
  const fs::path dir = temp_dir("tb");
  std::string path;
  {
    dtune::TensorBoardWriter w(dir.string());
    for (int step = 1; step <= 5; ++step) {
      w.add_scalar("train/loss", 2.0 / step, step);
      w.add_scalar("train/lr", 1e-4 * step, step);
    }
    path = w.path();
  }
  const auto got = read_tensorboard(dir);
  BOOST_REQUIRE(got.contains("train/loss"));
  BOOST_REQUIRE_EQUAL(got["train/loss"].size(), 5u);
  for (int i = 0; i < 5; ++i) {
    BOOST_TEST(got["train/loss"][i][0].get<int>() == i + 1);
    // simple_value is a float32: compare at float precision.
    BOOST_TEST(std::abs(got["train/loss"][i][1].get<double>() - 2.0 / (i + 1)) < 1e-6);
    BOOST_TEST(std::abs(got["train/lr"][i][1].get<double>() - 1e-4 * (i + 1)) < 1e-10);
  }
  fs::remove_all(dir);
}

// Resume from a checkpoint at step 3 after a crash at step 5 (mid-record): the events past step
// 3 and the torn record are dropped, so with the resumed run's steps 4..6 TensorBoard reads one
// value per step, the resumed run's. Without the drop it reads 1..5 then 4..6 (no purge: it
// purges only at a SessionLog START event).
BOOST_AUTO_TEST_CASE(tensorboard_resume_keeps_one_value_per_step) {
  const fs::path dir = temp_dir("tb_resume");
  std::string first;
  {
    dtune::TensorBoardWriter w(dir.string());
    for (int step = 1; step <= 5; ++step) {
      w.add_scalar("train/loss", 2.0 / step, step);
      w.add_scalar("eval/loss", 5.0 / step, step);
    }
    first = w.path();
  }
  {
    std::FILE* f = std::fopen(first.c_str(), "ab");  // the crash: half a record
    std::fwrite("\x20\0\0\0\0\0", 1, 6, f);
    std::fclose(f);
  }
  const auto size_before = fs::file_size(first);
  BOOST_TEST(dtune::drop_tensorboard_events_after(dir.string(), 3) == 2 * 2 + 1);
  BOOST_TEST(fs::file_size(first) < size_before);
  BOOST_TEST(dtune::drop_tensorboard_events_after(dir.string(), 3) == 0);  // idempotent
  {
    dtune::TensorBoardWriter w(dir.string());  // the resumed run (same file within a second)
    for (int step = 4; step <= 6; ++step) w.add_scalar("train/loss", 3.0 / step, step);
  }
  const auto got = read_tensorboard(dir);
  BOOST_REQUIRE(got.contains("train/loss"));
  BOOST_REQUIRE_EQUAL(got["train/loss"].size(), 6u);
  for (int i = 0; i < 6; ++i) {
    const int step = i + 1;
    BOOST_TEST(got["train/loss"][i][0].get<int>() == step);
    const double want = step <= 3 ? 2.0 / step : 3.0 / step;  // float32 values
    BOOST_TEST(std::abs(got["train/loss"][i][1].get<double>() - want) < 1e-6);
  }
  BOOST_REQUIRE_EQUAL(got["eval/loss"].size(), 3u);  // steps 4, 5 dropped, not logged again
  BOOST_TEST(got["eval/loss"][2][0].get<int>() == 3);
  BOOST_TEST(dtune::drop_tensorboard_events_after((dir / "absent").string(), 3) == 0);
  fs::remove_all(dir);
}

namespace {

dtune::CheckpointData small_checkpoint(int64_t step) {
  dtune::CheckpointData data;
  data.step = step;
  data.trainer = {{"step", step}};
  data.adapter_config.r = 2;
  data.adapter_config.alpha = 4;
  data.adapter_config.target_modules = {"q_proj"};
  const std::string layer = "base_model.model.model.layers.0.self_attn.q_proj.";
  data.adapter = {{layer + "lora_A.weight", at::randn({2, 4})}, {layer + "lora_B.weight", at::zeros({4, 2})}};
  data.optimizer = {{"exp_avg.0", at::zeros({8})}, {"exp_avg_sq.0", at::zeros({8})}};
  data.config_ini = "[train]\nmax_steps = 10\n";
  return data;
}

}  // namespace

// Every file of checkpoint-STEP is fsync'ed under the temporary name, then the folder, before the
// rename that publishes it; output_dir after it. A failing fsync publishes nothing, leaves the
// earlier checkpoint, and says so naming the file.
BOOST_AUTO_TEST_CASE(checkpoint_is_synced_before_it_is_published) {
  const fs::path dir = temp_dir("ckpt_sync");
  auto comm = dtune::dist::make_single_process_communicator();
  dtune::test::RecordingFileSync rec;
  const std::string path = dtune::save_checkpoint(*comm, dir.string(), small_checkpoint(7), nlohmann::json::object(), 3);
  BOOST_TEST(path == (dir / "checkpoint-7").string());
  const std::string tmp = (dir / ".tmp-checkpoint-7").string();
  const int rename = rec.index_of("rename " + tmp + " " + path);
  BOOST_REQUIRE(rename >= 0);
  int files = 0;
  for (const auto& e : fs::directory_iterator(path)) {
    const std::string name = e.path().filename().string();
    const int synced = rec.index_of("sync_file " + tmp + "/" + name);
    BOOST_TEST_INFO(name);
    BOOST_TEST((synced >= 0 && synced < rename));
    ++files;
  }
  BOOST_TEST(files == 6);  // adapter_config, adapter_model, optimizer, rank_states, config.ini, trainer_state
  const int folder = rec.index_of("sync_dir " + tmp);
  BOOST_TEST((folder >= 0 && folder < rename));
  BOOST_TEST((static_cast<size_t>(rename) + 1 < rec.calls.size() &&
              rec.calls[static_cast<size_t>(rename) + 1] == "sync_dir " + dir.string()));

  rec.fail_next("sync_file " + (dir / ".tmp-checkpoint-8/optimizer.safetensors").string(), EIO);
  try {
    dtune::save_checkpoint(*comm, dir.string(), small_checkpoint(8), nlohmann::json::object(), 3);
    BOOST_ERROR("expected an error");
  } catch (const dtune::Error& e) {
    const std::string msg = e.what();
    BOOST_TEST_INFO(msg);
    BOOST_TEST(msg.find("cannot fsync " + (dir / ".tmp-checkpoint-8/optimizer.safetensors").string() +
                        ": Input/output error") != std::string::npos);
    BOOST_TEST(msg.find("The newest complete checkpoint, " + path + ", is intact") != std::string::npos);
  }
  BOOST_TEST(!fs::exists(dir / "checkpoint-8"));
  BOOST_TEST(!fs::exists(dir / ".tmp-checkpoint-8"));
  fs::remove_all(dir);
}

// "latest" is the newest checkpoint whose completion marker and state files read; a newer one
// with a torn trainer_state.json (or rank_states.json, or a missing tensor file) is passed over
// for the one before it, and none at all is nullopt.
BOOST_AUTO_TEST_CASE(latest_falls_back_past_a_checkpoint_whose_marker_is_unreadable) {
  const fs::path dir = temp_dir("ckpt_fallback");
  auto comm = dtune::dist::make_single_process_communicator();
  for (int64_t step : {3, 5, 7, 9})
    dtune::save_checkpoint(*comm, dir.string(), small_checkpoint(step), nlohmann::json::object(), 10);
  BOOST_TEST(*dtune::find_checkpoint(dir.string(), "latest") == (dir / "checkpoint-9").string());
  fs::remove(dir / "checkpoint-9" / "optimizer.safetensors");
  std::ofstream(dir / "checkpoint-7" / "trainer_state.json") << "{\"step\": 7, \"epo";  // torn
  BOOST_TEST(*dtune::find_checkpoint(dir.string(), "latest") == (dir / "checkpoint-5").string());
  std::ofstream(dir / "checkpoint-5" / "rank_states.json") << "";
  BOOST_TEST(*dtune::find_checkpoint(dir.string(), "latest") == (dir / "checkpoint-3").string());
  std::ofstream(dir / "checkpoint-3" / "trainer_state.json") << "[]";
  BOOST_TEST(!dtune::find_checkpoint(dir.string(), "latest").has_value());
  fs::remove_all(dir);
}
