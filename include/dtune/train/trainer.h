// The training recipe: data-parallel LoRA fine-tuning of one model on the ranks of one
// communicator. Reads top to bottom in trainer.cpp: setup (device, data, model, adapter,
// optimizer, schedule, resume), the loop (accumulate, one all-reduce, check, clip, step, log,
// eval, checkpoint, preemption), the end (final checkpoint, adapter, generation test).
#pragma once

#include "dtune/config/config.h"

namespace dtune {

namespace dist {
class MpiEnv;
}

// Runs training as configured (validate() first). REQUIRES: called on every rank.
// Returns kExitOk, or kExitPreempted after checkpointing on SIGTERM/SIGUSR1.
int run_training(const Config& config, dist::MpiEnv& env);

}  // namespace dtune
