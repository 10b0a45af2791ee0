// MPI for CPU tensors, and the process-level MPI lifecycle.
//
// Under `mpirun` (OMPI_COMM_WORLD_*, PMI_*, PMIX_RANK) or Slurm's `srun`
// (a step with SLURM_STEP_NUM_TASKS > 1) ptune initialises MPI and takes rank
// and size from MPI_COMM_WORLD; started plainly it stays a single process
// and never touches MPI (no singleton init, so a laptop run needs no MPI
// runtime).
#pragma once

#include <memory>
#include <string>

#include "framework/dist/communicator.h"

namespace ptune::dist {

// What the environment says about the launch, before MPI is initialised.
struct LaunchEnv {
  bool under_launcher = false;  // mpirun / srun started this process
  int rank = 0, size = 1;       // as the launcher's variables say (MPI's are authoritative)
  int local_rank = 0, local_size = 1;
  std::string launcher;  // "mpirun", "srun" or ""
};
LaunchEnv launch_env();

// Initialises MPI (MPI_THREAD_FUNNELED) when the launch asks for it and
// finalises it at scope exit. communicator() is the MPI one under a
// launcher, the single-process one otherwise.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  bool active() const { return active_; }
  Communicator& communicator() { return *comm_; }
  // Ends every rank of the job now (MPI_Abort); a plain exit outside MPI.
  [[noreturn]] void abort(int code);

 private:
  bool active_ = false;
  std::unique_ptr<Communicator> comm_;
};

// All of MPI_COMM_WORLD. Needs MPI initialised (MpiSession).
std::unique_ptr<Communicator> make_mpi_communicator();
// Ranks of this node (MPI_COMM_TYPE_SHARED split of the world): the group
// that `shard: node` shards over.
std::unique_ptr<Communicator> make_mpi_node_communicator();

}  // namespace ptune::dist
