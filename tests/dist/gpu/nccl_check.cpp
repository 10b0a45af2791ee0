// NcclCommunicator on real GPUs: MPI bootstraps the NCCL id, then every
// collective is checked against hand-computed values (one rank per GPU).
// Built and run by run_nccl_check.sh on a CUDA machine; not part of ctest.
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <cstdio>
#include <vector>

#include "framework/core/error.h"
#include "framework/dist/mpi_communicator.h"
#include "framework/dist/nccl_communicator.h"

int main(int argc, char** argv) {
  ptune::dist::MpiSession mpi(&argc, &argv);
  try {
    auto& world = mpi.communicator();
    const int r = world.rank(), N = world.size();
    auto nccl = ptune::dist::make_nccl_communicator(world, ptune::dist::launch_env().local_rank);
    PTUNE_CHECK(nccl->rank() == r && nccl->size() == N, "nccl rank/size {}/{}", nccl->rank(), nccl->size());
    const int n = 1 << 20;
    float *d = nullptr, *g = nullptr;
    cudaMalloc(&d, n * sizeof(float));
    cudaMalloc(&g, size_t(n) * N * sizeof(float));
    std::vector<float> h(n);
    for (int i = 0; i < n; ++i) h[size_t(i)] = float(r + 1) * float(i % 7);
    cudaMemcpy(d, h.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    auto req = nccl->all_gather_async(std::span<const float>(d, n), std::span<float>(g, size_t(n) * N));
    req->wait();
    std::vector<float> back(size_t(n) * N);
    cudaMemcpy(back.data(), g, back.size() * sizeof(float), cudaMemcpyDeviceToHost);
    for (int k = 0; k < N; ++k)
      for (int i = 0; i < n; i += 4099)
        PTUNE_CHECK(back[size_t(k) * n + i] == float(k + 1) * float(i % 7), "all_gather[{}][{}]", k, i);
    nccl->all_reduce(std::span<float>(d, n));
    cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost);
    const float tri = float(N * (N + 1) / 2);
    for (int i = 0; i < n; i += 4099) PTUNE_CHECK(h[size_t(i)] == tri * float(i % 7), "all_reduce[{}] = {}", i, h[size_t(i)]);
    nccl->broadcast(std::span<float>(d, n), 0);
    nccl->barrier();
    // Timing: a 256 MB all-gather output (a LLaMA-7B block is ~400 MB bf16).
    const int64_t big = (int64_t(64) << 20) / N;  // floats per rank
    float *bs = nullptr, *bg = nullptr;
    cudaMalloc(&bs, size_t(big) * 4);
    cudaMalloc(&bg, size_t(big) * 4 * N);
    for (int it = 0; it < 3; ++it) nccl->all_gather(std::span<const float>(bs, size_t(big)), std::span<float>(bg, size_t(big) * N));
    cudaEvent_t t0, t1;
    cudaEventCreate(&t0);
    cudaEventCreate(&t1);
    cudaDeviceSynchronize();
    cudaEventRecord(t0);
    for (int it = 0; it < 10; ++it) nccl->all_gather(std::span<const float>(bs, size_t(big)), std::span<float>(bg, size_t(big) * N));
    cudaEventRecord(t1);
    cudaEventSynchronize(t1);
    float ms = 0;
    cudaEventElapsedTime(&ms, t0, t1);
    if (r == 0)
      fmt::print("nccl ok on {} rank(s): all-gather of {} MB output: {:.3f} ms each; bytes counted {}\n",
                 N, big * 4 * N >> 20, ms / 10, nccl->stats().all_gather_bytes);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nccl_check: rank %d: error: %s\n", mpi.communicator().rank(), e.what());
    mpi.abort(1);
  }
  return 0;
}
