// NCCL for device tensors (CUDA builds): the CPU-side structure. MPI
// bootstraps it: rank 0 creates the NCCL unique id, MPI broadcasts it,
// every rank joins with ncclCommInitRank on its local GPU. Collectives are
// issued on one communication stream so that the all-gather of the next
// layer overlaps the current layer's kernels on the compute stream.
//
// Only compiled with PTUNE_CUDA and nccl.h; the CUDA backend fills in the
// collectives (the CPU build uses MpiCommunicator).
#pragma once

#if defined(PTUNE_CUDA) && __has_include(<nccl.h>)
#define PTUNE_HAS_NCCL 1

#include <array>
#include <memory>

#include "framework/dist/communicator.h"

namespace ptune::dist {

// The 128-byte ncclUniqueId as plain bytes, so that bootstrapping needs no
// NCCL type in the interface.
using NcclId = std::array<uint8_t, 128>;

// Rank 0 calls ncclGetUniqueId and `bootstrap` broadcasts the id (MPI) to
// every rank; then each rank selects GPU local_rank and joins.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int local_rank);

}  // namespace ptune::dist

#endif
