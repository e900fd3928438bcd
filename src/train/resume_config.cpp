// Resume-time config comparison; see include/dtune/train/resume_config.h.
#include "dtune/train/resume_config.h"

#include <map>
#include <sstream>

#include "dtune/core/error.h"

namespace dtune {
namespace {

// "section.key" -> value from format_config()'s "[section]\nkey = value" lines.
std::map<std::string, std::string> parse_ini(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    const auto eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    out[section + "." + line.substr(0, eq)] = line.substr(eq + 3);
  }
  return out;
}

}  // namespace

bool resume_may_change(const std::string& key) {
  static const char* const kSections[] = {"log.", "checkpoint.", "generate."};
  for (const char* s : kSections)
    if (key.rfind(s, 0) == 0) return true;
  static const char* const kKeys[] = {
      "train.eval_every", "train.collective_timeout", "train.threads", "train.deterministic", "train.peak_tflops",
      "train.max_nonfinite_steps", "train.gradient_checkpointing", "train.activation_checkpoint_every",
      "model.attention", "model.tokenizer",
      // Where the frozen base lives changes no number: the adapter and optimizer are replicated.
      "train.sharding", "train.data_parallel_shard_degree",
      // A checkpoint written on CPU resumes on a GPU (or back); only the dropout stream restarts
      // (restore_rng_state, checkpoint.h). The precision may not change with it.
      "train.device"};
  for (const char* k : kKeys)
    if (key == k) return true;
  return false;
}

std::vector<ConfigChange> check_resume_config(const std::string& stored_ini, const std::string& current_ini,
                                              const std::string& checkpoint, int64_t stored_ranks,
                                              int64_t current_ranks) {
  const auto stored = parse_ini(stored_ini);
  const auto current = parse_ini(current_ini);
  std::vector<ConfigChange> allowed;
  std::string refused;
  for (const auto& [key, value] : stored) {
    if (key == "checkpoint.resume") continue;  // how this run was asked to start, not what it computes
    const auto it = current.find(key);
    if (it == current.end() || it->second == value) continue;
    if (resume_may_change(key)) {
      allowed.push_back({key, value, it->second});
    } else if (key == "train.gradient_accumulation_steps" && stored_ranks > 0 && current_ranks > 0) {
      int64_t before = 0, now = 0;
      try {
        before = std::stoll(value);
        now = std::stoll(it->second);
      } catch (const std::exception&) {
      }
      if (before > 0 && stored_ranks * before == current_ranks * now) {
        allowed.push_back({key, value, it->second});  // the same global batch on another number of ranks
      } else {
        refused += str("\n  ", key, ": ", value, " in the checkpoint (x ", stored_ranks, " ranks = ",
                       stored_ranks * before, " micro-batches per step), ", it->second, " now (x ", current_ranks,
                       " ranks = ", current_ranks * now, "); only a value that keeps ranks x steps equal may change");
      }
    } else {
      refused += str("\n  ", key, ": ", value, " in the checkpoint, ", it->second, " now");
    }
  }
  if (!refused.empty())
    throw Error(str("cannot resume ", checkpoint, " with a different run: these keys change what the run computes",
                    refused, "\n  resume with the checkpoint's values (its config.ini), or start a new run in another ",
                    "checkpoint.output_dir"));
  return allowed;
}

}  // namespace dtune
