// Rank placement: report, gather, GPU choice, checks, table; see include/dtune/dist/placement.h.
#include "dtune/dist/placement.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#ifdef DTUNE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "dtune/dist/cuda_check.h"
#endif

#include "dtune/core/error.h"
#include "dtune/dist/communicator.h"
#include "dtune/dist/device.h"

namespace dtune::dist {
namespace {

std::string hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

// The affinity mask as ranges: "0-7,16-23".
std::string affinity_list() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return "?";
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    int last = c;
    while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set)) ++last;
    if (!out.empty()) out += ",";
    out += last == c ? std::to_string(c) : dtune::str(c, "-", last);
    c = last;
  }
  return out;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<std::string> cuda_bus_ids() {
  std::vector<std::string> ids;
#ifdef DTUNE_HAVE_CUDA
  const int n = cuda_device_count();
  for (int d = 0; d < n; ++d) {
    char id[32] = {};
    CUDA_CHECK(cudaDeviceGetPCIBusId(id, sizeof(id), d));
    ids.emplace_back(id);
  }
#endif
  return ids;
}

std::string gpu_of(const RankPlacement& p) {
  return p.gpu < 0 ? std::string("cpu") : dtune::str(p.gpu, " (", p.visible_gpus[static_cast<size_t>(p.gpu)], ")");
}

}  // namespace

RankPlacement local_placement(int rank, int local_rank) {
  RankPlacement p;
  p.rank = rank;
  p.host = hostname();
  p.local_rank = local_rank;
  const char* simulated = std::getenv("DTUNE_TEST_VISIBLE_GPUS");
  p.visible_gpus = simulated != nullptr ? split_list(simulated) : cuda_bus_ids();
  p.cpus = affinity_list();
  return p;
}

std::vector<RankPlacement> gather_placements(Communicator& comm, const RankPlacement& mine) {
  std::vector<RankPlacement> all;
  for (int r = 0; r < comm.world_size(); ++r) {
    std::string bytes;
    if (r == comm.rank())
      bytes = nlohmann::json{{"host", mine.host}, {"local_rank", mine.local_rank},
                             {"visible_gpus", mine.visible_gpus}, {"cpus", mine.cpus}}.dump();
    comm.broadcast_string(bytes, r);
    const nlohmann::json j = nlohmann::json::parse(bytes);
    RankPlacement p;
    p.rank = r;
    p.host = j.at("host").get<std::string>();
    p.local_rank = j.at("local_rank").get<int>();
    p.visible_gpus = j.at("visible_gpus").get<std::vector<std::string>>();
    p.cpus = j.at("cpus").get<std::string>();
    all.push_back(std::move(p));
  }
  return all;
}

void choose_gpus(std::vector<RankPlacement>& all) {
  // (host, visible list) -> its ranks' indices in all, in local-rank order.
  std::map<std::pair<std::string, std::vector<std::string>>, std::vector<size_t>> groups;
  for (size_t i = 0; i < all.size(); ++i)
    if (!all[i].visible_gpus.empty()) groups[{all[i].host, all[i].visible_gpus}].push_back(i);
  for (auto& [key, members] : groups) {
    std::stable_sort(members.begin(), members.end(),
                     [&](size_t a, size_t b) { return all[a].local_rank < all[b].local_rank; });
    for (size_t k = 0; k < members.size(); ++k)
      all[members[k]].gpu = static_cast<int>(k % key.second.size());
  }
}

void check_placement(const std::vector<RankPlacement>& all) {
  std::map<std::pair<std::string, std::string>, std::vector<int>> users;  // (host, bus id) -> ranks
  std::map<std::string, std::set<std::string>> seen;                      // host -> bus ids visible
  for (const RankPlacement& p : all) {
    if (p.gpu < 0) continue;
    users[{p.host, p.visible_gpus[static_cast<size_t>(p.gpu)]}].push_back(p.rank);
    seen[p.host].insert(p.visible_gpus.begin(), p.visible_gpus.end());
  }
  for (const auto& [where, ranks] : users) {
    if (ranks.size() < 2) continue;
    std::string list;
    for (int r : ranks) list += (list.empty() ? "" : ", ") + std::to_string(r);
    throw Error(dtune::str("ranks ", list, " on ", where.first, " would share the GPU ", where.second,
                           " (more ranks than GPUs on that node; NCCL refuses a GPU shared within a job): start one "
                           "rank per GPU (srun --ntasks-per-node equal to --gpus-per-node; mpirun -np equal to the "
                           "GPUs, or --map-by ppr:GPUS:node), or show each rank its own GPUs (srun --gpus-per-task=1)"));
  }
  for (const auto& [host, ids] : seen) {
    std::vector<std::string> idle;
    for (const std::string& id : ids)
      if (users.find({host, id}) == users.end()) idle.push_back(id);
    if (idle.empty()) continue;
    std::string list;
    for (const std::string& id : idle) list += (list.empty() ? "" : ", ") + id;
    throw Error(dtune::str(host, " has ", ids.size(), " GPUs visible to dtune's ranks but ", ids.size() - idle.size(),
                           " of them in use; idle: ", list, ". Start one rank per GPU (srun --ntasks-per-node equal to ",
                           "--gpus-per-node, mpirun -np equal to the GPUs), or make only the GPUs to use visible ",
                           "(--gpus-per-node / CUDA_VISIBLE_DEVICES)"));
  }
}

std::string placement_table(const std::vector<RankPlacement>& all) {
  std::string out = "placement (rank, host, local rank, GPU (PCI bus id), CPUs):";
  for (const RankPlacement& p : all)
    out += dtune::str("\n  ", p.rank, "  ", p.host, "  ", p.local_rank, "  ", gpu_of(p), "  ", p.cpus);
  return out;
}

}  // namespace dtune::dist
