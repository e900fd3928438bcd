// The MPI communicator over CPU tensors: in-place all-reduce and broadcast of flat buffers, and
// all-gather, on one MPI communicator (MPI_COMM_WORLD or a shard group split off it). fp16/bf16 (no MPI type)
// are reduced through an fp32 copy.
#include "dtune/dist/mpi_communicator.h"

#include <mpi.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <climits>
#include <exception>

#include "dtune/core/error.h"
#include "dtune/dist/check.h"
#include "dtune/dist/mpi_env.h"

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

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, bool owns_comm) : comm_(comm), owns_comm_(owns_comm) {
  MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  // Not while an error unwinds (peers may be blocked; the job is about to be aborted), and never
  // after MPI_Finalize.
  if (!owns_comm_ || std::uncaught_exceptions() > 0 || !mpi_active()) return;
  MPI_Comm_free(&comm_);  // a destructor cannot throw; a failure here changes nothing
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
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, base + off * itemsize, count, type, mpi_op(op), comm_));
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
    MPI_CHECK(MPI_Bcast(base + off, count, MPI_BYTE, root, comm_));
  }
}

namespace {

// MPI_Iallgather's request and the element type it uses, both freed once it completes.
class MpiPendingGather final : public PendingCollective {
 public:
  MpiPendingGather(MPI_Request request, MPI_Datatype element) : request_(request), element_(element) {}
  ~MpiPendingGather() override {
    if (request_ == MPI_REQUEST_NULL) return;
    // Not waited on: the buffers must not be freed under a running gather. A destructor cannot
    // throw; a failure here ends up in the next collective's check.
    MPI_Wait(&request_, MPI_STATUS_IGNORE);
    MPI_Type_free(&element_);
  }
  void wait() override {
    if (request_ == MPI_REQUEST_NULL) return;
    const int rc = MPI_Wait(&request_, MPI_STATUS_IGNORE);
    request_ = MPI_REQUEST_NULL;
    MPI_Type_free(&element_);
    MPI_CHECK(rc);
  }

 private:
  MPI_Request request_;
  MPI_Datatype element_;
};

// One element = one contiguous MPI type of element_size bytes, so counts stay ints for any
// piece up to 2^31 - 1 elements (a decoder layer of a 70B model is under 2^30).
MPI_Datatype gather_element(const at::Tensor& input) {
  DTUNE_CHECK(input.numel() <= INT_MAX, "all_gather: a piece of ", input.numel(), " elements exceeds MPI's int count");
  MPI_Datatype element = MPI_DATATYPE_NULL;
  MPI_CHECK(MPI_Type_contiguous(static_cast<int>(input.element_size()), MPI_BYTE, &element));
  MPI_CHECK(MPI_Type_commit(&element));
  return element;
}

}  // namespace

void MpiCommunicator::all_gather(const at::Tensor& input, at::Tensor& output) {
  start_all_gather(input, output)->wait();
}

std::unique_ptr<PendingCollective> MpiCommunicator::start_all_gather(const at::Tensor& input, at::Tensor& output) {
  check_cpu_contiguous(input, "all_gather");
  check_cpu_contiguous(output, "all_gather");
  check_all_gather_args(input, output, size_);
  const int64_t n = input.numel();
  if (n == 0) return std::make_unique<MpiPendingGather>(MPI_REQUEST_NULL, MPI_DATATYPE_NULL);
  MPI_Datatype element = gather_element(input);
  MPI_Request request = MPI_REQUEST_NULL;
  const int rc = MPI_Iallgather(input.data_ptr(), static_cast<int>(n), element, output.data_ptr(),
                                static_cast<int>(n), element, comm_, &request);
  if (rc != MPI_SUCCESS) MPI_Type_free(&element);  // before the check, so a failure does not leak it
  MPI_CHECK(rc);
  return std::make_unique<MpiPendingGather>(request, element);
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

void MpiCommunicator::barrier() { MPI_CHECK(MPI_Barrier(comm_)); }

double MpiCommunicator::all_reduce_scalar(double value, ReduceOp op) {
  double out = 0.0;
  MPI_CHECK(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, mpi_op(op), comm_));
  return op == ReduceOp::kAvg ? out / world_size() : out;
}

void MpiCommunicator::broadcast_string(std::string& bytes, int root) {
  DTUNE_CHECK(root >= 0 && root < world_size(), "broadcast root ", root, " out of range");
  int64_t size = static_cast<int64_t>(bytes.size());
  MPI_CHECK(MPI_Bcast(&size, 1, MPI_INT64_T, root, comm_));
  bytes.resize(static_cast<size_t>(size));
  for (int64_t off = 0; off < size; off += kMaxChunk) {
    const int count = static_cast<int>(std::min(kMaxChunk, size - off));
    MPI_CHECK(MPI_Bcast(bytes.data() + off, count, MPI_BYTE, root, comm_));
  }
}

}  // namespace dtune::dist
