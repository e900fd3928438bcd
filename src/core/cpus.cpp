// CPU counts from the affinity mask; see cpus.h.
#include "dtune/core/cpus.h"

#include <sched.h>

#include <algorithm>
#include <thread>

namespace dtune {

int affinity_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int default_threads_per_rank(int ranks_on_node) {
  const int machine = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int mine = affinity_cpu_count();
  if (mine < machine) return mine;  // bound by the launcher: these CPUs are this rank's
  return std::max(1, machine / std::max(1, ranks_on_node));
}

}  // namespace dtune
