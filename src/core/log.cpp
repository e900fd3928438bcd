// Rank-aware logging to stderr; see include/dtune/core/log.h.
#include "dtune/core/log.h"

#include <unistd.h>

#include <cstdio>
#include <mutex>

namespace dtune::log {
namespace {
int g_rank = 0;
int g_world = 1;
std::mutex g_mu;

void emit(const std::string& prefix, const std::string& msg) {
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "%s%s\n", prefix.c_str(), msg.c_str());
  std::fflush(stderr);
}

std::string rank_prefix() {
  return g_world > 1 ? "[rank " + std::to_string(g_rank) + "] " : std::string();
}
}  // namespace

void set_rank(int rank, int world_size) {
  g_rank = rank;
  g_world = world_size;
}
int rank() { return g_rank; }
int world_size() { return g_world; }

void info(const std::string& msg) {
  if (g_rank == 0) emit("", msg);
}
void warn(const std::string& msg) {
  if (g_rank == 0) emit("warning: ", msg);
}
void error(const std::string& msg) { emit(rank_prefix() + "error: ", msg); }

bool stderr_is_tty() { return isatty(STDERR_FILENO) == 1; }

}  // namespace dtune::log
