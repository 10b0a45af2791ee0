// Collectives and sharded frozen weights on one GPU: a one-rank
// NcclCommunicator (NCCL allows nranks = 1) over the single-process
// bootstrap, and the SingleCommunicator on device memory. With one rank
// every collective is an identity or a copy, so the results are known
// exactly; what these tests check is that device, host and bf16 buffers go
// through, that the byte counts are the MPI communicator's, that the
// collectives are ordered after the compute stream's work and before its
// later work, and that sharding a bf16 CUDA model gathers its exact bytes.
// (Two GPUs: tests/dist/driver's `gather … cuda` mode under mpirun.)
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "cuda_test_util.h"
#include "dist/shard_check.h"
#include "framework/core/stream.h"
#include "framework/dist/communicator.h"
#include "framework/dist/nccl_communicator.h"

namespace ptune::cuda_test {
namespace {

using dist_test::same_bytes;

void check_sharded_gathers(dist::Communicator& comm, model::Arch arch) {
  model::ModelSpec spec = model::ModelSpec::tiny(arch);
  spec.layers = 3;
  dist_test::check_sharded_gathers(comm, spec, kGpu, DType::kBF16);
}

TEST(CudaDist, SingleCommunicatorShardsABf16CudaModel) {
  SKIP_WITHOUT_GPU();
  dist::SingleCommunicator c;
  check_sharded_gathers(c, model::Arch::kGpt2);
}

#ifdef PTUNE_HAS_NCCL

std::unique_ptr<dist::NcclCommunicator> one_rank(dist::Communicator& boot) {
  return dist::make_nccl_communicator(boot, 0);
}

TEST(CudaDist, NcclOneRankCollectivesOnDeviceTensors) {
  SKIP_WITHOUT_GPU();
  dist::SingleCommunicator boot;
  auto nccl = one_rank(boot);
  EXPECT_EQ(nccl->rank(), 0);
  EXPECT_EQ(nccl->size(), 1);
  EXPECT_TRUE(nccl->supports(kGpu));
  EXPECT_TRUE(nccl->supports(Device::cpu()));

  const Tensor x = randn({1000});
  const Tensor d = x.to(kGpu);
  nccl->all_reduce(d);
  nccl->all_reduce(d, dist::ReduceOp::kMax);
  EXPECT_TRUE(same_bytes(d, x));
  nccl->broadcast(d, 0);
  EXPECT_TRUE(same_bytes(d, x));

  const Tensor xb = x.to(DType::kBF16);
  const Tensor db = xb.to(kGpu), gathered = Tensor::zeros({1000}, DType::kBF16, kGpu);
  nccl->all_reduce(db);  // NCCL reduces bf16 (MPI cannot)
  nccl->all_gather(db, gathered);
  EXPECT_TRUE(same_bytes(gathered, xb));
  const Tensor gathered2 = Tensor::zeros({1000}, DType::kBF16, kGpu);
  auto req = nccl->all_gather_async(db, gathered2);
  req->wait();
  EXPECT_TRUE(same_bytes(gathered2, xb));

  // Raw bytes, as sharded weights gather them.
  const Tensor bytes_out = Tensor::zeros({1000}, DType::kBF16, kGpu);
  nccl->all_gather(std::span<const uint8_t>(static_cast<const uint8_t*>(db.raw()), db.nbytes()),
                   std::span<uint8_t>(static_cast<uint8_t*>(bytes_out.raw()), bytes_out.nbytes()));
  EXPECT_TRUE(same_bytes(bytes_out, xb));

  Tensor i = Tensor::zeros({3}, DType::kI64);
  for (int64_t k = 0; k < 3; ++k) i.data<int64_t>()[k] = (k + 1) << 40;
  const Tensor di = i.to(kGpu);
  nccl->all_reduce(di, dist::ReduceOp::kMin);
  EXPECT_TRUE(same_bytes(di, i));

  // The MPI communicator's counts: all-reduce and broadcast the buffer once,
  // all-gather what a rank receives.
  const dist::CommStats& s = nccl->stats();
  EXPECT_EQ(s.all_reduce_bytes, 2 * 4000 + 2000 + 24);
  EXPECT_EQ(s.all_gather_bytes, 3 * 2000);
  EXPECT_EQ(s.broadcast_bytes, 4000);

  EXPECT_THROW(nccl->all_gather(db, Tensor::zeros({999}, DType::kBF16, kGpu)), Error);
  EXPECT_THROW(nccl->all_gather(db, Tensor::zeros({1000}, DType::kF32, kGpu)), Error);
  EXPECT_THROW(nccl->all_reduce(Tensor::zeros({4}, DType::kI32, kGpu)), Error);
  EXPECT_THROW(nccl->broadcast(d, 1), Error);
  nccl->barrier();
}

// The trainer's flags, counts and metrics live on the host: staged.
TEST(CudaDist, NcclOneRankStagesHostMemory) {
  SKIP_WITHOUT_GPU();
  dist::SingleCommunicator boot;
  auto nccl = one_rank(boot);
  int64_t stop = 1;
  nccl->all_reduce(std::span<int64_t>(&stop, 1), dist::ReduceOp::kMax);
  EXPECT_EQ(stop, 1);
  std::vector<float> v = {1.5f, -2.0f, 3.25f}, out(3);
  nccl->all_reduce(std::span<float>(v));
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.0f, 3.25f}));
  nccl->all_gather(std::span<const float>(v), std::span<float>(out));
  EXPECT_EQ(out, v);
  std::vector<float> out2(3);
  nccl->all_gather_async(std::span<const float>(v), std::span<float>(out2))->wait();
  EXPECT_EQ(out2, v);
  std::vector<uint8_t> b = {7, 9};
  nccl->broadcast(std::span<uint8_t>(b), 0);
  EXPECT_EQ(b, (std::vector<uint8_t>{7, 9}));
  EXPECT_EQ(nccl->stats().all_reduce_bytes, 8 + 12);
  EXPECT_EQ(nccl->stats().all_gather_bytes, 24);
  // Host send with a device receive buffer is an error, not a wrong copy.
  const Tensor dev = Tensor::zeros({3}, DType::kF32, kGpu);
  EXPECT_THROW(nccl->all_gather(std::span<const float>(v), std::span<float>(dev.data<float>(), 3)), Error);
  nccl->synchronize();
}

// Big buffers (64 MiB) so that a missing event would show as a race: the
// gather must read what the compute stream wrote just before it (the
// zero_() is an asynchronous cudaMemset on the default stream), and a
// compute-stream read after wait() must see the gathered data.
TEST(CudaDist, NcclCollectivesAreOrderedWithTheComputeStream) {
  SKIP_WITHOUT_GPU();
  dist::SingleCommunicator boot;
  auto nccl = one_rank(boot);
  const int64_t n = int64_t(1) << 24;
  Tensor ones = Tensor::empty({n}, DType::kF32);
  for (int64_t k = 0; k < n; ++k) ones.data<float>()[k] = 1.0f;
  for (int round = 0; round < 3; ++round) {
    Tensor send = ones.to(kGpu);
    const Tensor recv = ones.to(kGpu);
    send.zero_();                                  // compute stream, asynchronous
    auto req = nccl->all_gather_async(send, recv);  // comm stream, after it
    req->wait();                                    // compute stream waits for the gather
    const Tensor back = recv.to(Device::cpu());     // a default-stream read
    int64_t nonzero = 0;
    for (int64_t k = 0; k < n; ++k) nonzero += back.data<float>()[k] != 0.0f;
    EXPECT_EQ(nonzero, 0) << "round " << round;

    // A synchronous all-reduce, then a default-stream read of its result.
    Tensor r = ones.to(kGpu);
    r.zero_();
    nccl->all_reduce(r);
    const Tensor rb = r.to(Device::cpu());
    EXPECT_EQ(rb.data<float>()[n - 1], 0.0f) << "round " << round;
  }
}

TEST(CudaDist, NcclShardsABf16CudaModel) {
  SKIP_WITHOUT_GPU();
  dist::SingleCommunicator boot;
  auto nccl = one_rank(boot);
  check_sharded_gathers(*nccl, model::Arch::kGpt2);
  check_sharded_gathers(*nccl, model::Arch::kBert);
}

#else

TEST(CudaDist, NcclCommunicator) { GTEST_SKIP() << "built without NCCL (the build defines PTUNE_NCCL when it links it)"; }

#endif

}  // namespace
}  // namespace ptune::cuda_test
