#include "framework/dist/mpi_communicator.h"

#include <mpi.h>

#include <cstdlib>
#include <string>

#include "framework/core/error.h"

namespace ptune::dist {

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

MPI_Datatype mpi_type(Elem e) {
  switch (e) {
    case Elem::kF32: return MPI_FLOAT;
    case Elem::kF64: return MPI_DOUBLE;
    case Elem::kI64: return MPI_INT64_T;
    case Elem::kU8: return MPI_UINT8_T;
    case Elem::kBF16: return MPI_UINT16_T;  // moved as bits; never reduced
  }
  return MPI_BYTE;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return MPI_SUM;
    case ReduceOp::kMax: return MPI_MAX;
    case ReduceOp::kMin: return MPI_MIN;
  }
  return MPI_SUM;
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  PTUNE_FAIL("{} failed: {}", what, std::string(msg, size_t(len)));
}

// MPI counts are int: large buffers go in chunks of at most 2^30 elements.
constexpr int64_t kChunk = int64_t(1) << 30;

class MpiRequest final : public Request {
 public:
  MpiRequest(MPI_Request r, CommStats& s) : r_(r), s_(s) {}
  ~MpiRequest() override {
    if (r_ != MPI_REQUEST_NULL) MPI_Wait(&r_, MPI_STATUS_IGNORE);
  }
  void wait() override {
    CommTimer t(s_);
    check(MPI_Wait(&r_, MPI_STATUS_IGNORE), "MPI_Wait");
  }

 private:
  MPI_Request r_;
  CommStats& s_;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    if (owned_) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // Host memory only (ptune does not assume a CUDA-aware MPI).
  bool supports(Device device) const override { return device.is_cpu(); }
  void barrier() override {
    CommTimer t(stats_);
    check(MPI_Barrier(comm_), "MPI_Barrier");
  }

 protected:
  void all_reduce_raw(void* data, int64_t count, Elem e, ReduceOp op) override {
    PTUNE_CHECK(e != Elem::kBF16, "all_reduce: MPI has no bf16 sum; reduce in f32");
    CommTimer t(stats_);
    char* p = static_cast<char*>(data);
    for (int64_t at = 0; at < count; at += kChunk) {
      const int n = int(std::min(kChunk, count - at));
      check(MPI_Allreduce(MPI_IN_PLACE, p + at * int64_t(elem_size(e)), n, mpi_type(e), mpi_op(op), comm_),
            "MPI_Allreduce");
    }
    stats_.all_reduce_bytes += count * int64_t(elem_size(e));
  }
  void all_gather_raw(const void* send, void* recv, int64_t count, Elem e) override {
    CommTimer t(stats_);
    PTUNE_CHECK(count < kChunk, "all_gather: {} elements per rank is over MPI's int count", count);
    check(MPI_Allgather(send, int(count), mpi_type(e), recv, int(count), mpi_type(e), comm_), "MPI_Allgather");
    stats_.all_gather_bytes += count * size_ * int64_t(elem_size(e));
  }
  std::unique_ptr<Request> all_gather_async_raw(const void* send, void* recv, int64_t count, Elem e) override {
    CommTimer t(stats_);
    PTUNE_CHECK(count < kChunk, "all_gather: {} elements per rank is over MPI's int count", count);
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Iallgather(send, int(count), mpi_type(e), recv, int(count), mpi_type(e), comm_, &r), "MPI_Iallgather");
    stats_.all_gather_bytes += count * size_ * int64_t(elem_size(e));
    return std::make_unique<MpiRequest>(r, stats_);
  }
  void broadcast_raw(void* data, int64_t count, Elem e, int root) override {
    CommTimer t(stats_);
    char* p = static_cast<char*>(data);
    for (int64_t at = 0; at < count; at += kChunk) {
      const int n = int(std::min(kChunk, count - at));
      check(MPI_Bcast(p + at * int64_t(elem_size(e)), n, mpi_type(e), root, comm_), "MPI_Bcast");
    }
    stats_.broadcast_bytes += count * int64_t(elem_size(e));
  }

 private:
  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

LaunchEnv launch_env() {
  LaunchEnv env;
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) {
    env.under_launcher = true;
    env.launcher = "mpirun";
    env.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    env.size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    env.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
    env.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
  } else if (std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK")) {
    env.under_launcher = true;
    env.launcher = "mpirun";
    env.rank = env_int("PMI_RANK", env_int("PMIX_RANK", 0));
    env.size = env_int("PMI_SIZE", 1);
  } else if (std::getenv("SLURM_STEP_ID") && env_int("SLURM_STEP_NUM_TASKS", 1) > 1) {
    // A task of an srun step with more than one task: MPI wires up through
    // Slurm's PMI(x). (The batch script itself has SLURM_NTASKS but no step
    // of its own: a ptune started there directly stays a single process.)
    env.under_launcher = true;
    env.launcher = "srun";
    env.rank = env_int("SLURM_PROCID", 0);
    env.size = env_int("SLURM_STEP_NUM_TASKS", 1);
    env.local_rank = env_int("SLURM_LOCALID", 0);
    env.local_size = env_int("SLURM_NTASKS_PER_NODE", 1);
  }
  return env;
}

MpiSession::MpiSession(int* argc, char*** argv) {
  if (launch_env().under_launcher) {
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    // Errors come back as codes (turned into ptune::Error), not as aborts
    // deep inside MPI, so the failing rank can say what went wrong first.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    active_ = true;
    comm_ = make_mpi_communicator();
  } else {
    comm_ = std::make_unique<SingleCommunicator>();
  }
}

MpiSession::~MpiSession() {
  comm_.reset();
  if (active_) MPI_Finalize();
}

void MpiSession::abort(int code) {
  if (active_) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

std::unique_ptr<Communicator> make_mpi_communicator() {
  int init = 0;
  MPI_Initialized(&init);
  PTUNE_CHECK(init, "MPI is not initialised (start the job with mpirun or srun)");
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, false);
}

std::unique_ptr<Communicator> make_mpi_node_communicator() {
  int init = 0;
  MPI_Initialized(&init);
  PTUNE_CHECK(init, "MPI is not initialised (start the job with mpirun or srun)");
  MPI_Comm node = MPI_COMM_NULL;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  return std::make_unique<MpiCommunicator>(node, true);
}

}  // namespace ptune::dist
