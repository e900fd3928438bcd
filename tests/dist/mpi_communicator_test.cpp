// Multi-rank test (run by ctest under mpirun -np 2 and -np 4): all-reduce, broadcast and the
// host helpers of the MPI communicator give exact results for several dtypes and sizes.
#include "dtune/dist/mpi_communicator.h"

#include <boost/test/unit_test.hpp>

#include <ATen/ATen.h>

#include "dtune/core/error.h"
#include "dtune/dist/mpi_env.h"

using dtune::dist::ReduceOp;

namespace {

// One MpiEnv per process, created before the first test and finalized at exit.
struct MpiFixture {
  MpiFixture() {
    static int argc = 0;
    static char** argv = nullptr;
    env = std::make_unique<dtune::dist::MpiEnv>(&argc, &argv);
  }
  ~MpiFixture() { env.reset(); }
  static std::unique_ptr<dtune::dist::MpiEnv> env;
};
std::unique_ptr<dtune::dist::MpiEnv> MpiFixture::env;

// Values that are exact in every tested dtype (small integers): rank r, element i -> (r+1)*(i%7+1).
at::Tensor rank_values(int rank, int64_t n, at::ScalarType dtype) {
  return ((at::arange(n, at::kLong) % 7 + 1) * (rank + 1)).to(dtype);
}

const int64_t kSizes[] = {0, 1, 7, 1023, 100003};
const at::ScalarType kDtypes[] = {at::kFloat, at::kDouble, at::kInt, at::kLong, at::kHalf, at::kBFloat16, at::kByte};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(MpiFixture);

BOOST_AUTO_TEST_CASE(env_reports_ranks) {
  auto& env = *MpiFixture::env;
  BOOST_TEST(env.world_size() >= 1);
  BOOST_TEST(env.rank() >= 0);
  BOOST_TEST(env.rank() < env.world_size());
  // One host in tests: the node-local rank equals the world rank.
  BOOST_TEST(env.local_rank() == env.rank());
  BOOST_TEST(env.local_size() == env.world_size());
}

BOOST_AUTO_TEST_CASE(all_reduce_sum_is_exact) {
  auto comm = MpiFixture::env->make_mpi_communicator();
  const int w = comm->world_size();
  for (auto dtype : kDtypes) {
    for (int64_t n : kSizes) {
      at::Tensor t = rank_values(comm->rank(), n, dtype);
      comm->all_reduce(t, ReduceOp::kSum);
      // sum over r of (r+1) = w(w+1)/2; uint8 holds (w(w+1)/2)*7 = 70 at most for w = 4.
      at::Tensor want = ((at::arange(n, at::kLong) % 7 + 1) * (w * (w + 1) / 2)).to(dtype);
      BOOST_TEST(t.scalar_type() == dtype);
      BOOST_TEST(at::equal(t, want), "dtype " << dtype << " n " << n);
    }
  }
}

BOOST_AUTO_TEST_CASE(all_reduce_avg_and_max) {
  auto comm = MpiFixture::env->make_mpi_communicator();
  const int w = comm->world_size();
  for (auto dtype : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    at::Tensor t = rank_values(comm->rank(), 1023, dtype);
    comm->all_reduce(t, ReduceOp::kAvg);
    // mean of (r+1) = (w+1)/2: exact in binary for w in {1, 2, 4} times small integers.
    at::Tensor want = ((at::arange(1023, at::kDouble).remainder(7) + 1) * ((w + 1) / 2.0)).to(dtype);
    BOOST_TEST(at::equal(t, want), "avg dtype " << dtype);
  }
  for (auto dtype : {at::kFloat, at::kInt, at::kLong}) {
    at::Tensor t = rank_values(comm->rank(), 77, dtype);
    comm->all_reduce(t, ReduceOp::kMax);
    BOOST_TEST(at::equal(t, rank_values(w - 1, 77, dtype)), "max dtype " << dtype);
  }
}

BOOST_AUTO_TEST_CASE(all_reduce_rejects_bad_input) {
  auto comm = MpiFixture::env->make_mpi_communicator();
  at::Tensor strided = at::ones({4, 4}).t();
  BOOST_CHECK_THROW(comm->all_reduce(strided, ReduceOp::kSum), dtune::Error);
  at::Tensor ints = at::ones({4}, at::kInt);
  BOOST_CHECK_THROW(comm->all_reduce(ints, ReduceOp::kAvg), dtune::Error);
}

BOOST_AUTO_TEST_CASE(broadcast_from_every_root) {
  auto comm = MpiFixture::env->make_mpi_communicator();
  for (int root = 0; root < comm->world_size(); ++root) {
    for (auto dtype : kDtypes) {
      for (int64_t n : kSizes) {
        at::Tensor t = rank_values(comm->rank(), n, dtype);
        comm->broadcast(t, root);
        BOOST_TEST(at::equal(t, rank_values(root, n, dtype)), "root " << root << " dtype " << dtype << " n " << n);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(all_gather_places_each_rank_piece_in_rank_order) {
  auto comm = MpiFixture::env->make_mpi_communicator();
  const int w = comm->world_size();
  for (auto dtype : kDtypes) {
    for (int64_t n : kSizes) {
      const at::Tensor piece = rank_values(comm->rank(), n, dtype);
      at::Tensor out = at::full({w * n}, 99, dtype);
      comm->all_gather(piece, out);
      for (int r = 0; r < w; ++r)
        BOOST_TEST(at::equal(out.narrow(0, r * n, n), rank_values(r, n, dtype)), "dtype " << dtype << " n " << n << " r " << r);
    }
  }
  at::Tensor wrong = at::empty({w * 7 + 1});
  BOOST_CHECK_THROW(comm->all_gather(rank_values(0, 7, at::kFloat), wrong), dtune::Error);
  at::Tensor other_dtype = at::empty({w * 7}, at::kDouble);
  BOOST_CHECK_THROW(comm->all_gather(rank_values(0, 7, at::kFloat), other_dtype), dtune::Error);
}

BOOST_AUTO_TEST_CASE(started_all_gathers_finish_on_wait_with_other_collectives_in_between) {
  auto comm = MpiFixture::env->make_mpi_communicator();
  const int w = comm->world_size();
  const at::Tensor a = rank_values(comm->rank(), 1023, at::kBFloat16);
  const at::Tensor b = rank_values(comm->rank() + 1, 5, at::kFloat);
  at::Tensor out_a = at::empty({w * 1023}, at::kBFloat16), out_b = at::empty({w * 5});
  auto first = comm->start_all_gather(a, out_a);
  auto second = comm->start_all_gather(b, out_b);  // two in flight, as a prefetch behind an acquire
  BOOST_TEST(comm->all_reduce_scalar(1.0, ReduceOp::kSum) == static_cast<double>(w));
  second->wait();
  first->wait();
  first->wait();  // a second wait is a no-op
  for (int r = 0; r < w; ++r) {
    BOOST_TEST(at::equal(out_a.narrow(0, r * 1023, 1023), rank_values(r, 1023, at::kBFloat16)));
    BOOST_TEST(at::equal(out_b.narrow(0, r * 5, 5), rank_values(r + 1, 5, at::kFloat)));
  }
  at::Tensor out_c = at::empty({w * 5});
  { auto dropped = comm->start_all_gather(b, out_c); }  // never waited on: its destructor waits
  BOOST_TEST(at::equal(out_c, out_b));
}

BOOST_AUTO_TEST_CASE(group_communicators_split_consecutive_ranks) {
  auto& env = *MpiFixture::env;
  const int w = env.world_size();
  for (int g = 1; g <= w; ++g) {
    if (w % g != 0) {
      BOOST_CHECK_THROW(env.make_group_mpi_communicator(g), dtune::Error);
      continue;
    }
    auto group = env.make_group_mpi_communicator(g);
    BOOST_TEST(group->world_size() == g);
    BOOST_TEST(group->rank() == env.rank() % g);
    // The group's all-gather holds exactly the world ranks [first, first + g).
    const int first = env.rank() - env.rank() % g;
    at::Tensor out = at::empty({g * 3}, at::kLong);
    group->all_gather(rank_values(env.rank(), 3, at::kLong), out);
    for (int r = 0; r < g; ++r) BOOST_TEST(at::equal(out.narrow(0, 3 * r, 3), rank_values(first + r, 3, at::kLong)));
    BOOST_TEST(group->all_reduce_scalar(1.0, ReduceOp::kSum) == static_cast<double>(g));
  }
  BOOST_TEST(env.node_first_rank() == 0);  // one host in tests
}

BOOST_AUTO_TEST_CASE(host_helpers) {
  auto comm = MpiFixture::env->make_mpi_communicator();
  const int w = comm->world_size();
  const int r = comm->rank();
  BOOST_TEST(comm->all_reduce_scalar(r + 1.0, ReduceOp::kSum) == w * (w + 1) / 2.0);
  BOOST_TEST(comm->all_reduce_scalar(r + 1.0, ReduceOp::kMax) == static_cast<double>(w));
  BOOST_TEST(comm->all_reduce_scalar(r + 1.0, ReduceOp::kAvg) == (w + 1) / 2.0);
  BOOST_TEST(comm->any(r == w - 1) == true);
  BOOST_TEST(comm->any(false) == false);
  std::string s = r == 0 ? std::string("config from rank 0\n\0with a nul", 30) : std::string("x");
  comm->broadcast_string(s, 0);
  BOOST_TEST(s == std::string("config from rank 0\n\0with a nul", 30));
  std::string empty = r == 0 ? "" : "not empty";
  comm->broadcast_string(empty, 0);
  BOOST_TEST(empty.empty());
  comm->barrier();
}

BOOST_AUTO_TEST_CASE(single_process_communicator_is_identity) {
  auto comm = dtune::dist::make_single_process_communicator();
  at::Tensor t = rank_values(3, 10, at::kFloat);
  comm->all_reduce(t, ReduceOp::kSum);
  BOOST_TEST(at::equal(t, rank_values(3, 10, at::kFloat)));
  BOOST_TEST(comm->all_reduce_scalar(2.5, ReduceOp::kAvg) == 2.5);
  BOOST_TEST(comm->world_size() == 1);
  BOOST_CHECK_THROW(comm->broadcast(t, 1), dtune::Error);
  at::Tensor gathered = at::empty({10});
  comm->all_gather(t, gathered);
  BOOST_TEST(at::equal(gathered, t));
}
