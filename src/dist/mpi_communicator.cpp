// The MPI communicator over CPU tensors: in-place all-reduce and broadcast of flat buffers, and
// all-gather, on one MPI communicator (MPI_COMM_WORLD or a shard group split off it), each collective nonblocking and waited for within the timeout (the census and
// the bound: mpi_communicator.h). fp16/bf16 (no MPI type) are reduced through an fp32 copy.
#include "dtune/dist/mpi_communicator.h"

#include <sched.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

#include "dtune/core/error.h"
#include "dtune/dist/check.h"
#include "dtune/dist/mpi_env.h"
#include "dtune/dist/stalled_collective.h"

namespace dtune::dist {
namespace {

MPI_Datatype mpi_type(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return MPI_FLOAT;
    case c10::ScalarType::Double: return MPI_DOUBLE;
    case c10::ScalarType::Int: return MPI_INT32_T;
    case c10::ScalarType::Long: return MPI_INT64_T;
    case c10::ScalarType::Short: return MPI_INT16_T;
    case c10::ScalarType::Char: return MPI_INT8_T;
    case c10::ScalarType::Byte: return MPI_UINT8_T;
    case c10::ScalarType::Bool: return MPI_C_BOOL;
    default: return MPI_DATATYPE_NULL;
  }
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::kMax ? MPI_MAX : MPI_SUM; }

void check_cpu_contiguous(const at::Tensor& t, const char* what) {
  DTUNE_CHECK(t.defined(), what, ": tensor is undefined");
  DTUNE_CHECK(t.device().is_cpu(), what, " (MPI backend) needs a CPU tensor, got ", t.device(),
              "; use the NCCL communicator for GPU tensors");
  DTUNE_CHECK(t.is_contiguous(), what, " needs a contiguous tensor");
}

// MPI counts are int: large buffers go in chunks of at most INT_MAX / 2 elements.
constexpr int64_t kMaxChunk = INT_MAX / 2;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A census answer: the answering rank's count of bounded waits and the collective it waits in.
struct CensusReply {
  int64_t seq;
  char what[192];  // NUL-terminated, cut to fit
};

}  // namespace

MpiCommunicator::MpiCommunicator(double timeout_s, MPI_Comm comm, bool owns_comm)
    : timeout_s_(timeout_s), comm_(comm), owns_comm_(owns_comm) {
  DTUNE_CHECK(timeout_s_ > 0, "train.collective_timeout must be > 0 seconds, got ", timeout_s_);
  MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  // Not while an error unwinds (peers may be blocked; the job is about to be aborted), and never
  // after MPI_Finalize.
  if (!owns_comm_ || std::uncaught_exceptions() > 0 || !mpi_active()) return;
  MPI_Comm_free(&comm_);  // a destructor cannot throw; a failure here changes nothing
}

void MpiCommunicator::wait_bounded(MPI_Request& request, const char* what) {
  ++seq_;
  waiting_in_ = str(what, " (", phase_, ")");
  const double start = now_s();
  for (;;) {
    int done = 0;
    MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    const double waited = now_s() - start;
    if (waited < kSpinS) {
      sched_yield();  // a short wait (the usual case): poll at once, leave the core to a busy peer
      continue;
    }
    answer_census();
    if (waited > timeout_s_) fail_stalled(waited);
    usleep(kPollIntervalUs);
  }
}

void MpiCommunicator::answer_census() {
  for (;;) {
    int asked = 0;
    MPI_Status status;
    MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kCensusAskTag, comm_, &asked, &status));
    if (!asked) return;
    int64_t their_seq = 0;
    MPI_CHECK(MPI_Recv(&their_seq, 1, MPI_INT64_T, status.MPI_SOURCE, kCensusAskTag, comm_, MPI_STATUS_IGNORE));
    CensusReply reply{};
    reply.seq = seq_;
    std::snprintf(reply.what, sizeof(reply.what), "%s", waiting_in_.c_str());
    // The asker posted this receive before asking: the send completes without waiting on it.
    MPI_CHECK(MPI_Send(&reply, sizeof(reply), MPI_BYTE, status.MPI_SOURCE, kCensusReplyTag, comm_));
  }
}

void MpiCommunicator::fail_stalled(double waited_s) {
  const int me = rank(), world = world_size();
  StalledCollective mine{me, seq_, waiting_in_, waited_s, timeout_s_, kCensusGraceS};
  std::fprintf(stderr, "[rank %d] %s has waited %.0f s (train.collective_timeout %g s): asking the other ranks "
               "what they are doing (%g s)\n", me, waiting_in_.c_str(), waited_s, timeout_s_, kCensusGraceS);
  std::fflush(stderr);
  // Receives first, then the asks (nonblocking: a peer that never calls MPI again must not block
  // this rank). Requests to silent peers stay pending until the job ends, so their buffers are
  // never freed (allocated once; the process ends right after).
  struct Census {
    int64_t ask = 0;
    std::vector<CensusReply> replies;
    std::vector<MPI_Request> receives, asks;
  };
  static Census* const census = new Census;
  census->ask = seq_;
  census->replies.assign(static_cast<size_t>(world), CensusReply{});
  census->receives.assign(static_cast<size_t>(world), MPI_REQUEST_NULL);
  census->asks.assign(static_cast<size_t>(world), MPI_REQUEST_NULL);
  std::vector<CensusReply>& replies = census->replies;
  std::vector<bool> answered(static_cast<size_t>(world), false);
  for (int r = 0; r < world; ++r) {
    if (r == me) continue;
    MPI_CHECK(MPI_Irecv(&replies[r], sizeof(CensusReply), MPI_BYTE, r, kCensusReplyTag, comm_,
                        &census->receives[r]));
  }
  for (int r = 0; r < world; ++r) {
    if (r == me) continue;
    MPI_CHECK(MPI_Isend(&census->ask, 1, MPI_INT64_T, r, kCensusAskTag, comm_, &census->asks[r]));
  }
  const double census_end = now_s() + kCensusGraceS;
  for (int pending = world - 1; pending > 0 && now_s() < census_end;) {
    answer_census();  // a peer that timed out too asks this rank at the same time
    for (int r = 0; r < world; ++r) {
      if (r == me || answered[r]) continue;
      int got = 0;
      MPI_CHECK(MPI_Test(&census->receives[r], &got, MPI_STATUS_IGNORE));
      if (got) {
        answered[r] = true;
        --pending;
      }
    }
    usleep(1000);
  }
  std::vector<PeerAnswer> peers;
  for (int r = 0; r < world; ++r) {
    if (r == me) continue;
    PeerAnswer p;
    p.rank = r;
    p.answered = answered[r];
    if (p.answered) {
      p.seq = replies[r].seq;
      p.what.assign(replies[r].what, strnlen(replies[r].what, sizeof(replies[r].what)));
    }
    peers.push_back(std::move(p));
  }
  // The error boundary (run_guarded) prints it and ends the job with MPI_Abort. On the way, the
  // stack unwinds (the run lock is released) while the collective stays pending: its buffer is
  // not touched again by this process, which ends without another collective.
  throw Error(describe_stalled_collective(mine, peers));
}

void MpiCommunicator::all_reduce(at::Tensor& tensor, ReduceOp op) {
  check_cpu_contiguous(tensor, "all_reduce");
  const auto st = tensor.scalar_type();
  if (st == c10::ScalarType::Half || st == c10::ScalarType::BFloat16) {
    at::Tensor wide = tensor.to(at::kFloat);
    all_reduce(wide, op);
    tensor.copy_(wide);
    return;
  }
  MPI_Datatype type = mpi_type(st);
  DTUNE_CHECK(type != MPI_DATATYPE_NULL, "all_reduce: dtype ", st, " is not supported by the MPI backend");
  DTUNE_CHECK(!(st == c10::ScalarType::Bool && op != ReduceOp::kMax),
              "all_reduce: bool tensors support only ReduceOp::kMax");
  DTUNE_CHECK(!(op == ReduceOp::kAvg && !at::isFloatingType(st)),
              "all_reduce: ReduceOp::kAvg needs a floating-point tensor, got ", st);
  const int64_t n = tensor.numel();
  const int64_t itemsize = static_cast<int64_t>(tensor.element_size());
  auto* base = static_cast<char*>(tensor.data_ptr());
  for (int64_t off = 0; off < n; off += kMaxChunk) {
    const int count = static_cast<int>(std::min(kMaxChunk, n - off));
    MPI_Request request;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, base + off * itemsize, count, type, mpi_op(op), comm_, &request));
    wait_bounded(request, "all_reduce");
  }
  if (op == ReduceOp::kAvg && n > 0) tensor.div_(world_size());
}

void MpiCommunicator::broadcast(at::Tensor& tensor, int root) {
  check_cpu_contiguous(tensor, "broadcast");
  DTUNE_CHECK(root >= 0 && root < world_size(), "broadcast root ", root, " out of range");
  // Broadcast moves bytes, so any dtype works.
  const int64_t bytes = tensor.numel() * static_cast<int64_t>(tensor.element_size());
  auto* base = static_cast<char*>(tensor.data_ptr());
  for (int64_t off = 0; off < bytes; off += kMaxChunk) {
    const int count = static_cast<int>(std::min(kMaxChunk, bytes - off));
    MPI_Request request;
    MPI_CHECK(MPI_Ibcast(base + off, count, MPI_BYTE, root, comm_, &request));
    wait_bounded(request, "broadcast");
  }
}

void MpiCommunicator::barrier() {
  MPI_Request request;
  MPI_CHECK(MPI_Ibarrier(comm_, &request));
  wait_bounded(request, "barrier");
}

double MpiCommunicator::all_reduce_scalar(double value, ReduceOp op) {
  double out = 0.0;
  MPI_Request request;
  MPI_CHECK(MPI_Iallreduce(&value, &out, 1, MPI_DOUBLE, mpi_op(op), comm_, &request));
  wait_bounded(request, "all_reduce_scalar");
  return op == ReduceOp::kAvg ? out / world_size() : out;
}

void MpiCommunicator::broadcast_string(std::string& bytes, int root) {
  DTUNE_CHECK(root >= 0 && root < world_size(), "broadcast root ", root, " out of range");
  int64_t size = static_cast<int64_t>(bytes.size());
  MPI_Request request;
  MPI_CHECK(MPI_Ibcast(&size, 1, MPI_INT64_T, root, comm_, &request));
  wait_bounded(request, "broadcast_string (size)");
  bytes.resize(static_cast<size_t>(size));
  for (int64_t off = 0; off < size; off += kMaxChunk) {
    const int count = static_cast<int>(std::min(kMaxChunk, size - off));
    MPI_CHECK(MPI_Ibcast(bytes.data() + off, count, MPI_BYTE, root, comm_, &request));
    wait_bounded(request, "broadcast_string");
  }
}

// MPI_Iallgather's request and the element type it uses, both freed once it completes; waited
// for within the communicator's bound.
class MpiPendingGather final : public PendingCollective {
 public:
  MpiPendingGather(MpiCommunicator* comm, MPI_Request request, MPI_Datatype element)
      : comm_(comm), request_(request), element_(element) {}
  ~MpiPendingGather() override {
    // Never waited on: the buffers must not be freed under a running gather. Not while an error
    // unwinds (the job is being aborted; a bounded wait could throw here).
    if (request_ == MPI_REQUEST_NULL || std::uncaught_exceptions() > 0) return;
    try {
      wait();
    } catch (const std::exception& e) {  // a destructor cannot throw: say it, the job ends anyway
      std::fprintf(stderr, "[rank %d] %s\n", comm_->rank(), e.what());
      std::fflush(stderr);
      std::abort();
    }
  }
  void wait() override {
    if (request_ == MPI_REQUEST_NULL) return;
    comm_->wait_bounded(request_, "all_gather");
    request_ = MPI_REQUEST_NULL;
    MPI_Type_free(&element_);
  }

 private:
  MpiCommunicator* comm_;
  MPI_Request request_;
  MPI_Datatype element_;
};

void MpiCommunicator::all_gather(const at::Tensor& input, at::Tensor& output) {
  start_all_gather(input, output)->wait();
}

std::unique_ptr<PendingCollective> MpiCommunicator::start_all_gather(const at::Tensor& input, at::Tensor& output) {
  check_cpu_contiguous(input, "all_gather");
  check_cpu_contiguous(output, "all_gather");
  check_all_gather_args(input, output, size_);
  const int64_t n = input.numel();
  if (n == 0) return std::make_unique<MpiPendingGather>(this, MPI_REQUEST_NULL, MPI_DATATYPE_NULL);
  // One element = one contiguous MPI type of element_size bytes, so counts stay ints for any
  // piece up to 2^31 - 1 elements (a decoder layer of a 70B model is under 2^30).
  DTUNE_CHECK(n <= INT_MAX, "all_gather: a piece of ", n, " elements exceeds MPI's int count");
  MPI_Datatype element = MPI_DATATYPE_NULL;
  MPI_CHECK(MPI_Type_contiguous(static_cast<int>(input.element_size()), MPI_BYTE, &element));
  MPI_CHECK(MPI_Type_commit(&element));
  MPI_Request request = MPI_REQUEST_NULL;
  const int rc = MPI_Iallgather(input.data_ptr(), static_cast<int>(n), element, output.data_ptr(),
                                static_cast<int>(n), element, comm_, &request);
  if (rc != MPI_SUCCESS) MPI_Type_free(&element);  // before the check, so a failure does not leak it
  MPI_CHECK(rc);
  return std::make_unique<MpiPendingGather>(this, request, element);
}

MPI_Comm split_world_into_groups(int group_size) {
  int rank = 0, world = 1;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world));
  DTUNE_CHECK(group_size >= 1 && world % group_size == 0, "a shard group of ", group_size,
              " ranks does not divide the job's ", world, " ranks");
  MPI_Comm group = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, rank / group_size, rank, &group));
  MPI_CHECK(MPI_Comm_set_errhandler(group, MPI_ERRORS_RETURN));
  return group;
}

}  // namespace dtune::dist
