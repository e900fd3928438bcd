// Rank placement: GPU choice for the layouts launchers produce (every GPU visible to every rank,
// one GPU per task, a socket's GPUs per rank), the shared-GPU and idle-GPU checks with the fix in
// their messages, and the table. Records are simulated; no GPU is needed.
#include "dtune/dist/placement.h"

#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "dtune/core/error.h"

using dtune::dist::RankPlacement;

namespace {

const std::vector<std::string> kEight = {"0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0",
                                         "0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0"};

// ranks_per_host ranks on each of hosts hosts; visible(rank_on_host) says what each sees.
template <typename Visible>
std::vector<RankPlacement> layout(int hosts, int ranks_per_host, Visible visible) {
  std::vector<RankPlacement> all;
  for (int h = 0; h < hosts; ++h)
    for (int l = 0; l < ranks_per_host; ++l) {
      RankPlacement p;
      p.rank = h * ranks_per_host + l;
      p.host = "node" + std::to_string(h);
      p.local_rank = l;
      p.visible_gpus = visible(l);
      p.cpus = std::to_string(l * 4) + "-" + std::to_string(l * 4 + 3);
      all.push_back(p);
    }
  return all;
}

std::string error_of(const std::vector<RankPlacement>& all) {
  try {
    dtune::dist::check_placement(all);
  } catch (const dtune::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_gpu_visible_gives_the_local_rank) {
  auto all = layout(2, 8, [](int) { return kEight; });
  dtune::dist::choose_gpus(all);
  for (const RankPlacement& p : all) BOOST_TEST(p.gpu == p.local_rank);
  BOOST_TEST(error_of(all) == "");
}

BOOST_AUTO_TEST_CASE(one_gpu_per_task_gives_index_zero) {  // srun --gpus-per-task=1
  auto all = layout(2, 8, [](int l) { return std::vector<std::string>{kEight[static_cast<size_t>(l)]}; });
  dtune::dist::choose_gpus(all);
  for (const RankPlacement& p : all) BOOST_TEST(p.gpu == 0);
  BOOST_TEST(error_of(all) == "");
}

BOOST_AUTO_TEST_CASE(a_sockets_gpus_per_rank_give_the_place_among_that_sockets_ranks) {  // --gpu-bind=closest
  auto all = layout(1, 8, [](int l) {
    return l < 4 ? std::vector<std::string>(kEight.begin(), kEight.begin() + 4)
                 : std::vector<std::string>(kEight.begin() + 4, kEight.end());
  });
  dtune::dist::choose_gpus(all);
  for (const RankPlacement& p : all) BOOST_TEST(p.gpu == p.local_rank % 4);
  BOOST_TEST(error_of(all) == "");
}

BOOST_AUTO_TEST_CASE(more_ranks_than_gpus_is_refused_naming_the_ranks_and_the_gpu) {
  auto all = layout(1, 3, [](int) { return std::vector<std::string>{kEight[0], kEight[1]}; });
  dtune::dist::choose_gpus(all);
  const std::string e = error_of(all);
  BOOST_TEST(e.find("ranks 0, 2 on node0 would share the GPU 0000:18:00.0") != std::string::npos, e);
  BOOST_TEST(e.find("--ntasks-per-node") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(gpus_left_idle_are_refused_naming_them) {  // --gpus-per-node=8 with 4 tasks
  auto all = layout(1, 4, [](int) { return kEight; });
  dtune::dist::choose_gpus(all);
  const std::string e = error_of(all);
  BOOST_TEST(e.find("node0 has 8 GPUs visible to dtune's ranks but 4 of them in use; idle: 0000:9a:00.0, 0000:ab:00.0, "
                    "0000:ba:00.0, 0000:db:00.0") != std::string::npos,
             e);
}

BOOST_AUTO_TEST_CASE(cpu_ranks_are_not_checked_and_the_table_names_everything) {
  auto all = layout(1, 2, [](int) { return std::vector<std::string>{}; });
  dtune::dist::choose_gpus(all);
  BOOST_TEST(all[0].gpu == -1);
  BOOST_TEST(error_of(all) == "");
  auto gpus = layout(1, 2, [](int l) { return std::vector<std::string>{kEight[static_cast<size_t>(l)]}; });
  dtune::dist::choose_gpus(gpus);
  const std::string table = dtune::dist::placement_table(gpus);
  BOOST_TEST(table.find("\n  1  node0  1  0 (0000:2a:00.0)  4-7") != std::string::npos, table);
  BOOST_TEST(dtune::dist::placement_table(all).find("\n  0  node0  0  cpu  0-3") != std::string::npos);
}
