// The CPU runtime ptune sets up before any op runs: which GEMM kernels
// OpenBLAS runs, how many OpenMP threads a process uses (OpenBLAS's
// OpenMP build shares that pool) and how long their idle threads spin.
//
// Kernels. Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernels by CPU
// model number and falls back to SSE3 "Prescott" kernels on CPUs it does not
// know, such as virtualised Xeons that report a generic model: GEMMs then run
// at a third of the speed or less. The choice is made when the library loads,
// so the fix is to restart the process with OPENBLAS_CORETYPE set
// (launch/main.cpp).
//
// Spinning. libgomp's idle threads spin for ~300,000 iterations at every
// barrier before they sleep. While other processes keep the cores busy, a
// team member that lost its core makes the others spin through whole time
// slices: the quickstart's 2-epoch run took 51 s instead of 0.3 s beside two
// busy loops on 2 cores; with GOMP_SPINCOUNT=10000, 4.7 s, and no measurable
// change on idle cores (MiniLM-shaped bench step, best of 4 interleaved: 92.0
// vs 90.1 ms). libgomp reads it when it loads: set by the same restart.
//
// Threads. Ranks that share a node and are not bound to their own cores
// (mpirun --bind-to none, or oversubscribed) would each start one thread per
// CPU: 2 ranks on 2 cores ran the quickstart's epoch in 14.1 s instead of
// 0.51 s, 4 ranks in 37.5 s instead of 0.69 s. Each rank gets its share.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ptune::ops {

// The kernel set OpenBLAS chose ("Haswell", "SkylakeX", "Prescott", …).
std::string blas_core_name();
// A better OPENBLAS_CORETYPE for this CPU when OpenBLAS fell back to a
// generic kernel and the user has not chosen one; nullopt otherwise.
std::optional<std::string> blas_core_override();

// Environment variables the OpenMP and OpenBLAS runtimes read only when
// they load, with the values ptune wants and the user has not set:
// OPENBLAS_CORETYPE (blas_core_override) and GOMP_SPINCOUNT=10000 (unless
// GOMP_SPINCOUNT or OMP_WAIT_POLICY is set). Empty: nothing to restart for.
std::vector<std::pair<std::string, std::string>> runtime_env_overrides();

// OpenMP threads for one of `local_ranks` processes on this node: the CPUs
// its affinity mask allows, capped at the node's online CPUs divided among
// the local ranks (a rank bound to its own cores keeps them all), at least
// 1. Applied (omp_set_num_threads) unless OMP_NUM_THREADS is set.
int default_cpu_threads(int local_ranks);
void configure_cpu_threads(int local_ranks);

}  // namespace ptune::ops
