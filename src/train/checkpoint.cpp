// Checkpoint write (staged + renamed), discovery, load; see checkpoint.h.
#include "dtune/train/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>

#include "dtune/core/durable_file.h"
#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/dist/communicator.h"
#include "dtune/io/safetensors.h"

namespace fs = std::filesystem;

namespace dtune {
namespace {

constexpr const char* kPrefix = "checkpoint-";

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.flush();
  DTUNE_CHECK(out.good(), "cannot write ", path.string(), " (disk full or no permission?)");
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  DTUNE_CHECK(in, "cannot read ", path.string());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Completed checkpoints in output_dir, oldest first: (step, path).
std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(kPrefix, 0) != 0 || !e.is_directory()) continue;
    const std::string digits = name.substr(std::string(kPrefix).size());
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
    if (!fs::exists(e.path() / "trainer_state.json")) continue;
    out.emplace_back(std::stoll(digits), e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Why checkpoint folder dir cannot be resumed ("" when it can): its marker and state files must
// parse, its tensors must be there.
std::string checkpoint_problem(const fs::path& dir) {
  try {
    const nlohmann::json trainer = nlohmann::json::parse(read_text(dir / "trainer_state.json"));
    if (!trainer.is_object()) return "trainer_state.json is not a JSON object";
    const nlohmann::json ranks = nlohmann::json::parse(read_text(dir / "rank_states.json"));
    if (!ranks.is_array() || ranks.empty()) return "rank_states.json is not a non-empty list";
  } catch (const std::exception& e) {
    return e.what();
  }
  for (const char* file : {"adapter_model.safetensors", "adapter_config.json", "optimizer.safetensors"})
    if (!fs::exists(dir / file)) return dtune::str(file, " is missing");
  return "";
}

std::vector<std::pair<std::string, at::Tensor>> load_all(const fs::path& file, c10::Device device) {
  const SafetensorsFile f = SafetensorsFile::open(file.string());
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [name, entry] : f.entries()) out.emplace_back(name, f.load(name, at::kFloat, device));
  return out;
}

}  // namespace

std::string save_checkpoint(dist::Communicator& comm, const std::string& output_dir, const CheckpointData& data,
                            const RankState& rank_state, int64_t keep_last) {
  // Gather the rank states on rank 0 (small JSON; one broadcast per rank).
  nlohmann::json ranks = nlohmann::json::array();
  for (int r = 0; r < comm.world_size(); ++r) {
    std::string bytes = comm.rank() == r ? rank_state.dump() : std::string();
    comm.broadcast_string(bytes, r);
    if (comm.rank() == 0) ranks.push_back(nlohmann::json::parse(bytes));
  }
  const fs::path final_path = fs::path(output_dir) / (kPrefix + std::to_string(data.step));
  if (comm.rank() == 0) {
    const fs::path tmp = fs::path(output_dir) / (".tmp-" + final_path.filename().string());
    try {
      fs::create_directories(output_dir);
      fs::remove_all(tmp);
      save_peft_adapter(tmp.string(), data.adapter_config, data.adapter, data.tokenizer_source);  // creates tmp
      save_safetensors((tmp / "optimizer.safetensors").string(), data.optimizer);
      write_text(tmp / "rank_states.json", ranks.dump(1));
      write_text(tmp / "config.ini", data.config_ini);
      write_text(tmp / "trainer_state.json", data.trainer.dump(2));  // written last: marks complete
      fs::remove_all(final_path);  // a checkpoint of the same step from an interrupted earlier run
      publish_dir(tmp.string(), final_path.string());  // fsync files and folders, rename, fsync
    } catch (const std::exception& e) {
      std::error_code ignored;
      fs::remove_all(tmp, ignored);  // no half-written folder left behind (it could not load anyway)
      const auto all = list_checkpoints(output_dir);
      throw Error(dtune::str("cannot write checkpoint ", final_path.string(), ": ", e.what(),
                             "; check free space and permissions in checkpoint.output_dir. ",
                             all.empty() ? std::string("No earlier checkpoint exists.")
                                         : "The newest complete checkpoint, " + all.back().second.string() +
                                               ", is intact: fix the cause and rerun with --checkpoint.resume=latest."));
    }
    auto all = list_checkpoints(output_dir);
    for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i) fs::remove_all(all[i].second);
  }
  comm.barrier();  // nobody moves on (or exits) before the checkpoint is complete
  return final_path.string();
}

std::optional<std::string> find_checkpoint(const std::string& output_dir, const std::string& resume) {
  if (resume == "latest") {
    const auto all = list_checkpoints(output_dir);
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      const std::string problem = checkpoint_problem(it->second);
      if (problem.empty()) return it->second.string();
      log::warn(dtune::str("checkpoint ", it->second.string(), " is not complete (", problem, "): ",
                           std::next(it) != all.rend() ? "trying the one before it" : "no earlier one exists"));
    }
    return std::nullopt;
  }
  DTUNE_CHECK(fs::exists(fs::path(resume) / "trainer_state.json"), "checkpoint.resume = ", resume,
              " is not a complete checkpoint folder (no trainer_state.json); use 'latest' or a "
              "checkpoint-STEP folder from checkpoint.output_dir");
  return resume;
}

LoadedCheckpoint load_checkpoint(const std::string& path, int rank, int world_size, c10::Device device) {
  LoadedCheckpoint ck;
  ck.path = path;
  const fs::path dir(path);
  try {
    ck.trainer = nlohmann::json::parse(read_text(dir / "trainer_state.json"));
    const auto ranks = nlohmann::json::parse(read_text(dir / "rank_states.json"));
    DTUNE_CHECK(ranks.is_array() && !ranks.empty(), "checkpoint ", path,
                "/rank_states.json is not a list of rank states; resume from another checkpoint");
    for (const auto& r : ranks) ck.rank_states.push_back(r);
    if (static_cast<int>(ranks.size()) == world_size) ck.rank_state = ranks.at(static_cast<size_t>(rank));
  } catch (const nlohmann::json::exception& e) {
    throw Error(dtune::str("checkpoint ", path, " has malformed state: ", e.what()));
  }
  ck.adapter = load_peft_adapter(path, device).tensors;
  ck.optimizer = load_all(dir / "optimizer.safetensors", device);
  return ck;
}

nlohmann::json save_rng_state(c10::Device device) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  const at::Tensor state = gen.get_state();
  const auto* p = state.data_ptr<uint8_t>();
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(static_cast<size_t>(state.numel()) * 2);
  for (int64_t i = 0; i < state.numel(); ++i) {
    hex.push_back(kHex[p[i] >> 4]);
    hex.push_back(kHex[p[i] & 15]);
  }
  return {{"device", c10::DeviceTypeName(device.type(), /*lower_case=*/true)}, {"state", std::move(hex)}};
}

bool restore_rng_state(c10::Device device, const nlohmann::json& saved, const std::string& checkpoint,
                       uint64_t reseed) {
  const std::string here = c10::DeviceTypeName(device.type(), /*lower_case=*/true);
  std::string hex, saved_on;
  try {
    if (saved.is_string()) {
      hex = saved.get<std::string>();  // written before the device was stored: told apart by size below
    } else {
      hex = saved.at("state").get<std::string>();
      saved_on = saved.at("device").get<std::string>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(dtune::str("checkpoint ", checkpoint, ": the dropout RNG state in rank_states.json is malformed (",
                           e.what(), "); resume from another checkpoint"));
  }
  DTUNE_CHECK(hex.size() % 2 == 0, "checkpoint ", checkpoint, ": the dropout RNG state is malformed (odd hex length)");
  at::Tensor state = at::empty({static_cast<int64_t>(hex.size() / 2)}, at::kByte);
  auto* p = state.data_ptr<uint8_t>();
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw Error(dtune::str("checkpoint ", checkpoint, ": the dropout RNG state is malformed (not hex)"));
  };
  for (size_t i = 0; i < hex.size() / 2; ++i) p[i] = static_cast<uint8_t>(nibble(hex[2 * i]) * 16 + nibble(hex[2 * i + 1]));

  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  const int64_t expected = gen.get_state().numel();
  if (saved_on.empty()) saved_on = state.numel() == expected ? here : "another device kind";
  if (saved_on != here) {
    // CPU (mt19937) and CUDA (Philox seed + offset) generators have different states: the
    // uninterrupted run's dropout stream cannot be continued here, so start a new one.
    gen.set_current_seed(reseed);
    log::warn(dtune::str("checkpoint ", checkpoint, " holds a dropout RNG state from ", saved_on, " (", state.numel(),
                         " bytes) and this run is on ", here, ": dropout restarts from seed ", reseed,
                         ", so the run continues but its dropout masks differ from an uninterrupted one. "
                         "Resume on ", saved_on == "another device kind" ? std::string("that device kind") : saved_on,
                         " (train.device) to continue it exactly."));
    return false;
  }
  DTUNE_CHECK(state.numel() == expected, "checkpoint ", checkpoint, ": the ", here, " dropout RNG state has ",
              state.numel(), " bytes but this libtorch's ", here, " generator has ", expected,
              " (written by another libtorch version?); resume with the libtorch that wrote it");
  gen.set_state(state);
  return true;
}

AdamWMoments adamw_moments(const LoadedCheckpoint& ck) {
  std::optional<at::Tensor> exp_avg, exp_avg_sq;
  for (const auto& [name, t] : ck.optimizer) {
    if (name == "exp_avg") exp_avg = t;
    else if (name == "exp_avg_sq") exp_avg_sq = t;
    else throw Error(str("checkpoint ", ck.path, ": optimizer.safetensors holds an unknown tensor '", name,
                         "' (this dtune writes exp_avg and exp_avg_sq); resume with the dtune that wrote it"));
  }
  DTUNE_CHECK(exp_avg && exp_avg_sq, "checkpoint ", ck.path, ": optimizer.safetensors lacks ",
              exp_avg ? "exp_avg_sq" : "exp_avg", "; resume from an earlier complete checkpoint");
  return {*exp_avg, *exp_avg_sq};
}

}  // namespace dtune
