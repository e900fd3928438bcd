// Rank-aware logging: info() and warn() print on rank 0 only; error() prints on every rank with
// a "[rank N]" prefix. All go to stderr so that stdout stays clean for data (tokenize, generate).
#pragma once

#include <string>

namespace dtune::log {

// Set once after MPI start-up (defaults: rank 0 of 1, so single-process tools just work).
void set_rank(int rank, int world_size);
int rank();
int world_size();

void info(const std::string& msg);       // rank 0 only
void warn(const std::string& msg);       // rank 0 only, "warning: " prefix
void error(const std::string& msg);      // every rank, "[rank N] error: " prefix

// True when stderr is a terminal (progress bars) rather than a file (Slurm logs).
bool stderr_is_tty();

}  // namespace dtune::log
