// How many CPU threads a process should use: the CPUs its affinity mask allows (what
// `srun --cpu-bind`, `mpirun --bind-to`, taskset or a Slurm cgroup cpuset leaves it), not the
// machine's count, so that ranks sharing a node do not oversubscribe its cores.
#pragma once

namespace dtune {

// CPUs in this process's affinity mask; the machine's hardware threads if the mask is unreadable.
int affinity_cpu_count();

// Default threads for one of `ranks_on_node` ranks: the rank's own CPUs when the launcher bound
// it to fewer than the whole machine, else the machine's CPUs divided among the node's ranks.
int default_threads_per_rank(int ranks_on_node);

}  // namespace dtune
