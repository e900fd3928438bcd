// MPI over CPU tensors on one MPI communicator, MPI_COMM_WORLD or a shard group split off it (see
// communicator.h for the contract), every collective
// bounded by a timeout: a collective that outlives it ends the job (MPI_Abort) with a message that
// names the collective, the trainer's phase and the ranks that had not arrived (thrown as
// dtune::Error; the error boundary, run_guarded, prints it and calls MPI_Abort).
//
// How the bound works (MPI runs MPI_THREAD_FUNNELED, so no other thread may call MPI): each
// collective is started nonblocking (MPI_Iallreduce, MPI_Ibcast, MPI_Ibarrier) and this thread
// polls MPI_Test until it completes or the deadline passes (spinning with sched_yield for the
// first kSpinS, then sleeping kPollInterval between polls, which also drives MPI's progress).
// On timeout this rank runs a census over point-to-point messages (tags kCensusAskTag,
// kCensusReplyTag on this communicator; nothing else in dtune uses point-to-point there): it asks
// every peer and waits kCensusGraceS for answers. A peer answers while it polls in a bounded wait
// of its own, with the collective it waits in. So the message can name
//   - the ranks that did not answer: they have not arrived (computing, blocked outside MPI,
//     stuck, or dead: the census cannot tell which),
//   - the ranks waiting in the same collective, and ranks waiting in another one (a mismatch);
// it cannot name a rank that is blocked inside a blocking MPI call (MPI_Init, MPI_Finalize,
// MPI_Comm_split_type in MpiEnv) other than as not arrived.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>

#include "dtune/dist/communicator.h"

namespace dtune::dist {

class MpiCommunicator final : public Communicator {
 public:
  // timeout_s > 0: the most seconds one collective may take on this rank, from its call
  // (train.collective_timeout). comm: the ranks (MPI_COMM_WORLD, or a group split off it);
  // owns_comm: MPI_Comm_free it on destruction (never MPI_COMM_WORLD). Constructing is not a
  // collective. Throws dtune::Error on an MPI failure.
  explicit MpiCommunicator(double timeout_s, MPI_Comm comm = MPI_COMM_WORLD, bool owns_comm = false);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  void all_reduce(at::Tensor& tensor, ReduceOp op) override;
  void broadcast(at::Tensor& tensor, int root) override;
  void barrier() override;
  double all_reduce_scalar(double value, ReduceOp op) override;
  void broadcast_string(std::string& bytes, int root) override;
  void all_gather(const at::Tensor& input, at::Tensor& output) override;
  std::unique_ptr<PendingCollective> start_all_gather(const at::Tensor& input, at::Tensor& output) override;
  MPI_Comm comm() const { return comm_; }

  double timeout_s() const { return timeout_s_; }

  // Polling cadence of wait_bounded (see the file comment).
  static constexpr double kSpinS = 0.05;           // seconds of sched_yield polling before sleeping
  static constexpr int kPollIntervalUs = 200;      // microseconds slept between later polls
  static constexpr double kCensusGraceS = 3.0;     // seconds the census waits for answers (polling peers answer in ms)
  static constexpr int kCensusAskTag = 0x6474;     // point-to-point tags of the census on comm
  static constexpr int kCensusReplyTag = 0x6475;

 private:
  friend class MpiPendingGather;  // waits through wait_bounded
  // Waits for request (a nonblocking collective started on every rank) within timeout_s; on
  // timeout, runs the census and throws dtune::Error with the message: the caller's error
  // boundary (run_guarded) must end the job (MPI_Abort), as the request stays pending. what names the
  // collective ("all_reduce", "barrier"); the phase is added. Every collective of this class,
  // and any new one (all_gather: MPI_Iallgather then wait_bounded), waits through it.
  void wait_bounded(MPI_Request& request, const char* what);
  // Answers the census asks of timed-out peers (never blocks: MPI_Iprobe, then a small send
  // whose receive the asker posted before asking).
  void answer_census();
  [[noreturn]] void fail_stalled(double waited_s);  // the census, then throws

  double timeout_s_;
  MPI_Comm comm_;
  bool owns_comm_;
  int rank_ = 0, size_ = 1;
  int64_t seq_ = 0;          // bounded waits so far on this rank (the same count on every rank)
  std::string waiting_in_;   // "what (phase)" of the current bounded wait, for census answers
};

// MPI_Comm_split of MPI_COMM_WORLD into consecutive groups of group_size ranks; returns the
// group holding this rank (the caller frees it, e.g. through MpiCommunicator's owns_comm).
// REQUIRES: called on every rank with the same group_size. Throws dtune::Error when group_size
// does not divide the world size.
MPI_Comm split_world_into_groups(int group_size);

}  // namespace dtune::dist
