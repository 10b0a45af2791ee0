// The single-process communicator and sharding over one rank: what every
// plain `ptune train` (no mpirun) runs through.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "dist/shard_check.h"
#include "framework/core/arena.h"
#include "framework/core/error.h"
#include "framework/core/rng.h"
#include "framework/dist/communicator.h"
#include "framework/dist/mpi_communicator.h"
#include "framework/dist/sharded_weights.h"
#include "framework/model/transformer.h"
#include "expect_error.h"

namespace ptune::dist {
namespace {

TEST(SingleCommunicator, CollectivesAreIdentitiesAndCounted) {
  SingleCommunicator c;
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.size(), 1);
  std::vector<float> v = {1.5f, -2.0f};
  c.all_reduce(std::span<float>(v));
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.0f}));
  std::vector<float> out(2);
  c.all_gather(std::span<const float>(v), std::span<float>(out));
  EXPECT_EQ(out, v);
  auto r = c.all_gather_async(std::span<const float>(v), std::span<float>(out));
  r->wait();
  int64_t n = 7;
  c.broadcast(std::span<int64_t>(&n, 1), 0);
  EXPECT_EQ(n, 7);
  EXPECT_EQ(c.stats().all_reduce_bytes, 8);
  EXPECT_EQ(c.stats().all_gather_bytes, 16);
  EXPECT_EQ(c.stats().broadcast_bytes, 8);
  EXPECT_THROW(c.all_gather(std::span<const float>(v), std::span<float>(out.data(), 1)), Error);
  EXPECT_THROW(c.broadcast(std::span<int64_t>(&n, 1), 1), Error);
}

// Tensors: the element type from the dtype (bf16 moves as 2 bytes), every
// device accepted; dtypes a collective cannot take are errors.
TEST(SingleCommunicator, TensorCollectivesTakeTheirDtype) {
  SingleCommunicator c;
  EXPECT_TRUE(c.supports(Device::cpu()));
  EXPECT_TRUE(c.supports(Device::cuda(0)));
  Tensor x = Tensor::zeros({4}, DType::kF32);
  for (int64_t i = 0; i < 4; ++i) x.data<float>()[i] = float(i) - 1.5f;
  const Tensor xb = x.to(DType::kBF16), out = Tensor::zeros({4}, DType::kBF16);
  c.all_gather(xb, out);
  EXPECT_TRUE(dist_test::same_bytes(out, xb));
  const Tensor out2 = Tensor::zeros({4}, DType::kBF16);
  c.all_gather_async(xb, out2)->wait();
  EXPECT_TRUE(dist_test::same_bytes(out2, xb));
  c.all_reduce(x);
  c.broadcast(xb, 0);
  EXPECT_EQ(c.stats().all_gather_bytes, 16);
  EXPECT_EQ(c.stats().all_reduce_bytes, 16);
  EXPECT_EQ(c.stats().broadcast_bytes, 8);
  EXPECT_THROW(c.all_gather(xb, Tensor::zeros({4}, DType::kF32)), Error);
  EXPECT_THROW(c.all_gather(xb, Tensor::zeros({3}, DType::kBF16)), Error);
  EXPECT_THROW(c.all_reduce(Tensor::zeros({2}, DType::kI32)), Error);
  EXPECT_EQ(elem_size(elem_of(DType::kBF16)), 2u);
  std::vector<float> host(2);
  EXPECT_TRUE(memory_device(host.data()).is_cpu());
}

TEST(LaunchEnv, PlainProcessIsNotUnderALauncher) {
  // ctest runs this binary directly, never under mpirun or srun.
  if (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("SLURM_PROCID")) GTEST_SKIP();
  const LaunchEnv env = launch_env();
  EXPECT_FALSE(env.under_launcher);
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.size, 1);
}

std::unique_ptr<model::Transformer> tiny_bert() {
  model::ModelSpec spec = model::ModelSpec::tiny(model::Arch::kBert);
  Rng rng(5);
  return std::make_unique<model::Transformer>(spec, model::ModelWeights::random(spec, {model::Component::kPooler}, rng));
}

// Over one rank the gathered units are the original ones: forward and
// backward are bit-identical, and between micro-batches no block is bound.
TEST(ShardedWeights, OneRankMatchesTheResidentModelAndReleasesUnits) {
  auto ref = tiny_bert(), sharded = tiny_bert();
  SingleCommunicator c;
  ShardedWeights sw(*sharded, c, false);
  EXPECT_FALSE(sharded->weights().blocks[0].qkv_w.defined());  // dropped until gathered
  EXPECT_FALSE(sharded->weights().embeddings.word.defined());

  const model::ModelSpec& spec = ref->spec();
  const int64_t B = 2, T = 5, C = spec.hidden;
  Tensor x = Tensor::zeros({B, T, C}, DType::kF32, Device::cpu());
  Rng rng(3);
  rng.fill_normal(x, 0.0f, 1.0f);
  Tensor pos = Tensor::zeros({B, T}, DType::kI32, Device::cpu());
  ref->default_position_ids(pos, Tensor(), 0);
  model::ModelInputs in{x, pos, Tensor(), Tensor(), nullptr};
  Arena a1, a2;
  const Tensor h1 = ref->forward(in, a1);
  Tensor dx1 = Tensor::zeros({B, T, C}, DType::kF32, Device::cpu()), dx2 = dx1.clone();
  ref->backward(h1, {dx1, nullptr}, a1);

  sw.begin_micro_batch(true);
  EXPECT_TRUE(sharded->weights().embeddings.word.defined());
  const Tensor h2 = sharded->forward(in, a2);
  sharded->backward(h2, {dx2, nullptr}, a2);
  sw.end_micro_batch();
  EXPECT_FALSE(sharded->weights().blocks[1].fc_w.defined());
  ASSERT_EQ(h1.numel(), h2.numel());
  EXPECT_EQ(0, std::memcmp(h1.raw(), h2.raw(), size_t(h1.numel()) * 4));
  EXPECT_EQ(0, std::memcmp(dx1.raw(), dx2.raw(), size_t(dx1.numel()) * 4));
  // Forward: every unit once; backward: both blocks and the embeddings
  // (BERT's embedding norm, for the input gradient).
  int64_t psi = 0;
  for (size_t u = 0; u < sw.num_units(); ++u) psi += sw.unit_bytes(u);
  EXPECT_EQ(c.stats().all_gather_bytes, psi + sw.unit_bytes(1) + sw.unit_bytes(2) + sw.unit_bytes(0));
  EXPECT_EQ(sw.full_bytes(), sharded->weights().parameter_count() * 4);
}

// Any dtype shards: the units are gathered as raw bytes and counted as such
// (f32 = 4 bytes, bf16 = 2 per weight).
TEST(ShardedWeights, Bf16AndF32UnitsGatherTheirExactBytes) {
  for (const model::Arch arch : {model::Arch::kGpt2, model::Arch::kBert})
    for (const DType dt : {DType::kF32, DType::kBF16}) {
      SingleCommunicator c;
      SCOPED_TRACE(dtype_name(dt));
      EXPECT_NO_THROW(dist_test::check_sharded_gathers(c, model::ModelSpec::tiny(arch), Device::cpu(), dt));
    }
}

// Parts loaded for one layout only gather over a communicator of that
// layout: part 0 of 2 over one rank would gather half a unit.
TEST(ShardedWeights, TakesLoadedPartsOfItsOwnLayoutOnly) {
  const std::string dir = std::string(PTUNE_FIXTURES) + "/model/gpt2";
  SingleCommunicator c;
  auto halves = model::Transformer::load(dir, {{0, 2}});
  const std::string msg = testing::error_of([&] { ShardedWeights sw(*halves, c, false); });
  EXPECT_NE(msg.find("loaded as part 0 of 2, but this communicator is rank 0 of 1"), std::string::npos) << msg;

  // Loaded as the one part of one rank, the gathers give the whole load.
  const auto whole = model::Transformer::load(dir);
  auto part = model::Transformer::load(dir, {{0, 1}});
  ShardedWeights sw(*part, c, false);
  sw.begin_micro_batch(false);
  for (size_t u = 0; u < sw.num_units(); ++u) {
    sw.acquire(int64_t(u), -1, model::WeightGate::Pass::kForward);
    EXPECT_TRUE(dist_test::same_bytes(part->weights().units()[u].flat, whole->weights().units()[u].flat)) << u;
    sw.release(int64_t(u), model::WeightGate::Pass::kForward);
  }
  sw.end_micro_batch();
}

TEST(Communicator, RefusesMemoryItCannotMove) {
  // A communicator of host memory only, as the MPI one.
  class HostOnly final : public Communicator {
   public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    void barrier() override {}
    bool supports(Device d) const override { return d.is_cpu(); }

   protected:
    void all_reduce_raw(void*, int64_t, Elem, ReduceOp) override {}
    void all_gather_raw(const void*, void*, int64_t, Elem) override {}
    std::unique_ptr<Request> all_gather_async_raw(const void*, void*, int64_t, Elem) override { return nullptr; }
    void broadcast_raw(void*, int64_t, Elem, int) override {}
  } host_only;
  EXPECT_FALSE(host_only.supports(Device::cuda(0)));
  EXPECT_THROW(host_only.all_reduce(Tensor::borrow(reinterpret_cast<void*>(256), {4}, DType::kF32, Device::cuda(0))),
               Error);
}

}  // namespace
}  // namespace ptune::dist
