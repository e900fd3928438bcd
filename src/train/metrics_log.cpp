// metrics.jsonl + TensorBoard + progress bar / log lines; see metrics_log.h.
#include "dtune/train/metrics_log.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "dtune/core/durable_file.h"
#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/train/tensorboard_writer.h"

namespace dtune {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof(buf), "%lldh%02lldm", (long long)(t / 3600), (long long)(t % 3600 / 60));
  else std::snprintf(buf, sizeof(buf), "%lldm%02llds", (long long)(t / 60), (long long)(t % 60));
  return buf;
}

std::string format_metrics(const Metrics& m) {
  std::string out;
  char buf[64];
  for (const auto& [k, v] : m) {
    if (k == "lr") std::snprintf(buf, sizeof(buf), " %s %.3g", k.c_str(), v);
    else if (k == "tokens_per_s" || k == "loss_scale" || k == "tokens" ||
             k == "rows" || k == "train_rows") std::snprintf(buf, sizeof(buf), " %s %.0f", k.c_str(), v);
    else std::snprintf(buf, sizeof(buf), " %s %.4f", k.c_str(), v);
    out += buf;
  }
  return out;
}

// Rewrites path (if it exists) without the rows of steps after `step`, through a temp file + rename.
void keep_rows_up_to(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  bool dropped = false;
  while (std::getline(in, line)) {
    const auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_object() && row.contains("step") && row["step"].is_number_integer() && row["step"].get<int64_t>() > step) {
      dropped = true;
      continue;
    }
    kept += line + "\n";
  }
  if (!dropped) return;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << kept;
    out.close();
    DTUNE_CHECK(!out.fail(), "cannot write ", tmp, " (disk full or no permission?)");
  }
  publish_file(tmp, path);  // fsync, rename, fsync the folder
}

}  // namespace

MetricsLog::MetricsLog(MetricsOptions options) : options_(std::move(options)), start_s_(now_s()) {
  bar_ = options_.progress == "bar" || (options_.progress == "auto" && log::stderr_is_tty());
  std::filesystem::create_directories(options_.output_dir);
  const std::string path = options_.output_dir + "/metrics.jsonl";
  if (options_.resume_step >= 0) keep_rows_up_to(path, options_.resume_step);
  jsonl_ = std::fopen(path.c_str(), options_.resume_step >= 0 ? "a" : "w");
  DTUNE_CHECK(jsonl_ != nullptr, "cannot write ", path, ": ", std::strerror(errno));
  // As for metrics.jsonl: events logged past the checkpoint are logged again by this run (also
  // with log.tensorboard off now: the earlier run's tb/ would still show them twice).
  if (options_.resume_step >= 0) {
    drop_tensorboard_events_after(options_.output_dir + "/tb", options_.resume_step);
  }
  if (options_.tensorboard) tb_ = std::make_unique<TensorBoardWriter>(options_.output_dir + "/tb");
}

MetricsLog::~MetricsLog() {
  finish_line();
  if (jsonl_) std::fclose(jsonl_);
}

void MetricsLog::write_jsonl(const char* kind, int64_t step, const Metrics& metrics) {
  nlohmann::ordered_json j;
  j["kind"] = kind;
  j["step"] = step;
  for (const auto& [k, v] : metrics) j[k] = std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
  std::fprintf(jsonl_, "%s\n", j.dump().c_str());
  std::fflush(jsonl_);
  if (tb_) {
    for (const auto& [k, v] : metrics) tb_->add_scalar(std::string(kind) + "/" + k, v, step);
    tb_->flush();
  }
}

void MetricsLog::log_step(int64_t step, const Metrics& metrics) {
  write_jsonl("train", step, metrics);
  if (first_step_ < 0) first_step_ = step - 1;
  const double elapsed = now_s() - start_s_;
  const double per_step = elapsed / static_cast<double>(std::max<int64_t>(1, step - first_step_));
  const double eta = per_step * static_cast<double>(options_.total_steps - step);
  if (options_.progress == "off") return;
  char head[96];
  std::snprintf(head, sizeof(head), "step %lld/%lld", (long long)step, (long long)options_.total_steps);
  const std::string tail = format_metrics(metrics) + " | " + format_duration(elapsed) + " elapsed, ETA " + format_duration(eta);
  if (bar_) {
    const int width = 24;
    const int filled = options_.total_steps > 0 ? static_cast<int>(width * step / options_.total_steps) : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r\033[K[%s] %s%s", bar.c_str(), head, tail.c_str());
    std::fflush(stderr);
    line_open_ = true;
  } else if (step % options_.log_every == 0 || step == options_.total_steps) {
    log::info(std::string(head) + tail);
  }
}

void MetricsLog::log_eval(int64_t step, const Metrics& metrics) {
  write_jsonl("eval", step, metrics);
  if (options_.progress == "off") return;
  finish_line();
  log::info("eval at step " + std::to_string(step) + ":" + format_metrics(metrics));
}

void MetricsLog::log_epoch(int64_t step, const Metrics& metrics) {
  write_jsonl("epoch", step, metrics);
  if (options_.progress == "off") return;
  finish_line();
  std::string epoch = "?", rest;
  for (const auto& [k, v] : metrics) {
    if (k == "epoch") epoch = std::to_string(static_cast<int64_t>(v));
    else rest += format_metrics({{k, v}});
  }
  log::info("epoch " + epoch + " ended at step " + std::to_string(step) + ":" + rest);
}

void MetricsLog::finish_line() {
  if (line_open_) {
    std::fprintf(stderr, "\n");
    line_open_ = false;
  }
}

}  // namespace dtune
