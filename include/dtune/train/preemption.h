// Preemption signals (Slurm sends SIGTERM at the time limit, or --signal=USR1@T before it):
// the handler only sets a flag; the training loop polls it once per optimizer step, all ranks
// agree through one flag all-reduce, checkpoint, and exit with kExitPreempted (75).
#pragma once

namespace dtune {

// Installs handlers for SIGTERM and SIGUSR1 (idempotent).
void install_preemption_handlers();
// True once either signal has arrived in this process.
bool preemption_requested();

}  // namespace dtune
