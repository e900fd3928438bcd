// Where each rank runs: its host, node-local rank, the GPUs it can see, the one it uses and the
// CPUs it is bound to. Every rank reports its own (local_placement); all ranks learn all
// (gather_placements); each rank's GPU is chosen from the whole picture (choose_gpus) so that
// it also works when a launcher shows each rank only some of a node's GPUs; then the job stops
// at once, with the fix, when two ranks would share a GPU or a node's GPUs are left idle
// (check_placement), and rank 0 logs the table (placement_table). Pure functions over plain
// records, so tests simulate any layout.
#pragma once

#include <string>
#include <vector>

namespace dtune::dist {

class Communicator;

struct RankPlacement {
  int rank = 0;
  std::string host;                       // gethostname()
  int local_rank = 0;                     // among the ranks of its host (MpiEnv::local_rank)
  std::vector<std::string> visible_gpus;  // PCI bus ids of the GPUs it sees, in CUDA's order
  int gpu = -1;                           // index into visible_gpus it uses; -1: none (CPU)
  std::string cpus;                       // its affinity mask as a list, "0-7,16-23"
};

// This process's record (gpu = -1). visible_gpus from the CUDA runtime (empty without CUDA or a
// GPU), or, when DTUNE_TEST_VISIBLE_GPUS is set (a comma-separated list of bus ids; a TEST HOOK
// for the placement tests on machines without GPUs), that list.
RankPlacement local_placement(int rank, int local_rank);

// Every rank's record on every rank, by rank (a host-side gather, bounded as every collective
// of comm). REQUIRES: called on every rank of comm.
std::vector<RankPlacement> gather_placements(Communicator& comm, const RankPlacement& mine);

// Sets each record's gpu: its place among the ranks of its host that see the same GPU list
// (ordered by local rank), modulo the list's length. All of a node's GPUs visible to every
// rank (CUDA_VISIBLE_DEVICES unset, srun --gpus-per-node): the local rank. srun
// --gpus-per-task=1 or --gpu-bind=single:1: each rank sees one GPU, index 0. --gpu-bind=closest:
// each rank sees its socket's GPUs and takes its place among that socket's ranks. Records that
// see no GPU keep -1.
void choose_gpus(std::vector<RankPlacement>& all);

// Throws dtune::Error, naming the ranks, hosts and bus ids and the fix, when two ranks of one
// host use the same GPU (more ranks than GPUs: NCCL refuses a GPU shared by two ranks of one
// communicator), or when a host's ranks leave some of the GPUs they see unused (fewer ranks
// than GPUs, e.g. --gpus-per-node=8 with 4 tasks). Records with gpu = -1 are not checked.
void check_placement(const std::vector<RankPlacement>& all);

// One line per rank: rank, host, local rank, GPU index and bus id (or "cpu"), CPUs.
std::string placement_table(const std::vector<RankPlacement>& all);

}  // namespace dtune::dist
