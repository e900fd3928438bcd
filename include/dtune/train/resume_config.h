// Resuming a run with the config it was started with: the checkpoint's stored config.ini is
// compared with the current resolved config. Keys that change what the run computes (model,
// data, LoRA shape, batch, optimizer and schedule) must be equal; keys that only change how it is
// watched, saved or run (logging, eval interval, checkpoint cadence, timeouts, threads, kernels,
// activation recompute, the generation test) may differ and are listed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dtune {

// One key that differs: "section.key", the checkpoint's value and the current one.
struct ConfigChange {
  std::string key;
  std::string stored;
  std::string current;
};

// True for keys that may change on resume (the list is in resume_config.cpp; every other key,
// including any added later, must match).
bool resume_may_change(const std::string& key);

// Compares two configs in format_config()'s INI form. Throws dtune::Error naming checkpoint and
// every differing key that may not change (with both values) and how to proceed. Returns the
// allowed changes. Keys present on one side only (a key added or renamed by a newer dtune) are
// not compared.
//
// stored_ranks / current_ranks: the world sizes that wrote the checkpoint and that resume it
// (0: unknown). train.gradient_accumulation_steps may change exactly when the micro-batches of
// one optimizer step over all ranks stay the same (stored_ranks x stored = current_ranks x
// current), so a resume on another number of ranks can keep the global batch: 2 ranks x 2 ->
// 4 ranks x 1 or 1 rank x 4.
std::vector<ConfigChange> check_resume_config(const std::string& stored_ini, const std::string& current_ini,
                                              const std::string& checkpoint, int64_t stored_ranks = 0,
                                              int64_t current_ranks = 0);

}  // namespace dtune
