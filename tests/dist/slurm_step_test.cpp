// check_slurm_step: one MPI rank in a multi-task Slurm step (a wrong srun --mpi plugin) is an
// error naming both counts and the fix; the other combinations are not.
#include "dtune/dist/slurm_step.h"

#include <boost/test/unit_test.hpp>

#include <string>

#include "dtune/core/error.h"

BOOST_AUTO_TEST_CASE(one_rank_in_a_multi_task_step_is_refused) {
  try {
    dtune::dist::check_slurm_step(1, "8");
    BOOST_FAIL("accepted 8 one-rank jobs");
  } catch (const dtune::Error& e) {
    const std::string msg = e.what();
    BOOST_TEST(msg.find("Slurm started 8 tasks in this step (SLURM_STEP_NUM_TASKS) but MPI sees 1 rank") != std::string::npos, msg);
    BOOST_TEST(msg.find("DTUNE_SRUN_MPI") != std::string::npos, msg);
  }
}

BOOST_AUTO_TEST_CASE(matching_or_unknown_steps_pass) {
  BOOST_CHECK_NO_THROW(dtune::dist::check_slurm_step(1, nullptr));  // not under srun
  BOOST_CHECK_NO_THROW(dtune::dist::check_slurm_step(1, "1"));
  BOOST_CHECK_NO_THROW(dtune::dist::check_slurm_step(8, "8"));
  BOOST_CHECK_NO_THROW(dtune::dist::check_slurm_step(16, "2"));  // mpirun under a step of 2 daemons
  BOOST_CHECK_NO_THROW(dtune::dist::check_slurm_step(1, "garbage"));
}
