// A host emulation of the CUDA that framework/ops/cuda/flash_attention.cuh
// and head_norm.cuh use, so their kernels run on the CPU (in CI, without a
// GPU).
//
// Every CUDA thread of a block is a fiber (ucontext), run one at a time
// until it reaches a barrier. Warp-collective operations (shuffles, votes,
// ldmatrix, mma.sync) meet at a per-warp barrier and compute each lane's
// result from the whole warp's registers, following the fragment layouts of
// the PTX ISA (attention_mma.cuh); __syncthreads is a block barrier, and a
// barrier some threads never reach is reported as a deadlock. cp.async copies are held back until the issuing thread's
// cp.async.wait_group releases their group, so a read of shared memory
// before the wait sees the poison (NaN) every block's shared memory starts
// with. ldmatrix checks its addresses (inside shared memory, 16-byte rows).
// Emulated: the data flow and synchronisation; not: timing, bank conflicts,
// races between blocks, or the exact rounding of ex2.approx (exp2f here).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <functional>
#include <vector>

#include <ucontext.h>

// --- CUDA qualifiers and types ---------------------------------------------

#define __device__
#define __host__
#define __global__ inline  // kernels defined in headers, as device functions are
#define __forceinline__ inline
#define __launch_bounds__(...)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3() = default;
  dim3(unsigned x_, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}  // NOLINT: CUDA's implicit dim3
};
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

struct float2 {
  float x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }

struct __nv_bfloat16 {
  uint16_t bits;
};
struct __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
inline float __bfloat162float(__nv_bfloat16 v) {
  const uint32_t u = uint32_t(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {  // round to nearest even, as the hardware
  if (std::isnan(f)) return {0x7fc0};
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return {uint16_t(u >> 16)};
}
inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) {
  return {__float2bfloat16_rn(lo), __float2bfloat16_rn(hi)};
}
inline float2 __bfloat1622float2(__nv_bfloat162 v) { return {__bfloat162float(v.x), __bfloat162float(v.y)}; }

using std::max;
using std::min;

namespace ptune::ops::cuda {
using bf16 = __nv_bfloat16;
}

// --- one block's threads --------------------------------------------------

namespace ptune::emulation {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "cuda emulation: %s (block %u,%u thread %u)\n", what, blockIdx.x, blockIdx.y, threadIdx.x);
  std::abort();
}

// A cp.async: 16 bytes, or zeros when the source size is 0.
struct Copy {
  void* dst;
  const void* src;
  bool valid;
  int64_t issued;  // the issuing thread's epoch (see Fiber::epoch)
};

// A CUDA thread: a fiber with its own stack.
struct Fiber {
  ucontext_t context;
  std::unique_ptr<unsigned char[]> stack;
  bool finished = false;
  int64_t epoch = 0;                      // __syncthreads passed: threads in one epoch are unordered
  int turn = 0;                           // which copy of the exchange its next collective uses
  std::vector<Copy> open;                 // cp.async issued since the last commit
  std::vector<std::vector<Copy>> groups;  // committed, oldest first
};

struct Barrier {
  int expected = 0, arrived = 0;
  uint64_t generation = 0;
};

// One block at a time: every thread a fiber, all on the calling OS thread.
// A fiber runs until it waits at a barrier (then the next runnable fiber
// runs), so fibers interleave only at barriers, like CUDA threads that may
// run in any order between them.
struct Block {
  static constexpr size_t kStack = size_t(64) << 10;

  Block(int threads, size_t smem_bytes) : fibers(size_t(threads)), warps(size_t(threads / 32)), bytes(smem_bytes) {
    for (Fiber& f : fibers) f.stack.reset(new unsigned char[kStack]);
    all.expected = threads;
    for (Barrier& w : warps) w.expected = 32;
    for (auto& e : exchange) e.resize(size_t(threads));
    smem.resize(smem_bytes + 16);
  }

  std::vector<Fiber> fibers;
  size_t current = 0;
  ucontext_t launcher;
  std::function<void()> kernel;
  Barrier all;
  std::vector<Barrier> warps;
  int stalled = 0;  // switches since a barrier last opened or a fiber ended

  // Race check on shared memory, per 16-byte chunk (the unit of cp.async
  // and of an ldmatrix row): a cp.async write is in flight from the epoch
  // it was issued in to the epoch its wait_group landed it, an st.shared
  // in its own epoch; another thread's ldmatrix of the chunk in that span
  // has no barrier ordering it against the write, before or after. Plain
  // C++ loads and stores are not seen (only cp.async, st_shared_b32 and
  // ldmatrix, which the tiles go by).
  struct Chunk {
    int writer = -1;  // -2: several threads (an ldmatrix row spans their stores)
    int64_t written_from = -1, written_to = -1;
    int reader = -1;  // -2: several threads
    int64_t read_epoch = -1;
  };
  std::vector<Chunk> chunks;
  Chunk& chunk(const void* p) { return chunks[size_t(static_cast<const unsigned char*>(p) - shared()) / 16]; }

  struct Lane {
    const void* ptr;
    uint32_t regs[6];
    float f;
    bool b;
  };
  // One slot per thread, read by its warp, in two copies used in turn: a
  // lane can only overwrite a copy after the warp's next barrier, which
  // every lane passes only once done reading it, so each warp-collective
  // operation needs a single barrier.
  std::vector<Lane> exchange[2];
  size_t bytes;  // the launch's dynamic shared memory
  std::vector<unsigned char> smem;
  unsigned char* shared() { return smem.data() + (16 - reinterpret_cast<uintptr_t>(smem.data()) % 16) % 16; }
  bool in_shared(const void* p, size_t n) {
    const auto* c = static_cast<const unsigned char*>(p);
    return c >= shared() && c + n <= shared() + bytes;
  }

  Fiber& fiber() { return fibers[current]; }

  // Switches to the next unfinished fiber (round robin), or back to the
  // launcher when none is left.
  void next() {
    const size_t from = current;
    for (size_t k = 1; k <= fibers.size(); ++k) {
      const size_t to = (from + k) % fibers.size();
      if (fibers[to].finished) continue;
      if (to == from) return;
      current = to;
      threadIdx = dim3(unsigned(to));
      swapcontext(&fibers[from].context, &fibers[to].context);
      threadIdx = dim3(unsigned(from));
      current = from;
      return;
    }
    swapcontext(&fibers[from].context, &launcher);  // never resumed
  }

  void wait(Barrier& b) {
    const uint64_t generation = b.generation;
    if (&b == &all) ++fiber().epoch;
    if (++b.arrived == b.expected) {
      b.arrived = 0;
      ++b.generation;
      stalled = 0;
      return;
    }
    while (b.generation == generation) {
      // Every live fiber has been seen waiting since anything moved: a
      // barrier some threads never reach (they returned, or wait elsewhere).
      if (++stalled > 2 * int(fibers.size())) fail("deadlock: a barrier the other threads never reach");
      next();
    }
  }

  // A cp.async of this thread lands in `c`'s chunk now.
  void landed(const Copy& c) {
    Chunk& k = chunk(c.dst);
    const int me = int(current);
    const int64_t now = fiber().epoch;
    if (k.read_epoch >= c.issued && k.read_epoch <= now && k.reader != me)
      fail("race: cp.async overwrites shared memory another thread reads with no __syncthreads between");
    k.writer = me, k.written_from = c.issued, k.written_to = now;
  }
  // This thread's st.shared writes into p's chunk now.
  void wrote(const void* p) {
    Chunk& k = chunk(p);
    const int me = int(current);
    const int64_t now = fiber().epoch;
    if (k.read_epoch == now && k.reader != me)
      fail("race: st.shared overwrites shared memory another thread reads with no __syncthreads between");
    const bool shared_epoch = k.writer != -1 && k.written_to == now;
    k.writer = shared_epoch && k.writer != me ? -2 : me;
    if (!shared_epoch) k.written_from = now;
    k.written_to = now;
  }
  // This thread's ldmatrix reads row p.
  void read(const void* p) {
    Chunk& k = chunk(p);
    const int me = int(current);
    const int64_t now = fiber().epoch;
    if (k.writer != me && k.writer != -1 && now >= k.written_from && now <= k.written_to)
      fail("race: ldmatrix reads shared memory another thread writes with no __syncthreads between");
    if (k.read_epoch != now) k.read_epoch = now, k.reader = me;
    else if (k.reader != me) k.reader = -2;
  }

  static void entry();

  void run(dim3 block) {
    blockIdx = block;
    std::memset(smem.data(), 0xff, smem.size());  // bf16 and f32 NaN
    all.arrived = 0, stalled = 0;
    chunks.assign(smem.size() / 16 + 1, Chunk{});
    for (Barrier& w : warps) w.arrived = 0;
    for (Fiber& f : fibers) {
      f.finished = false;
      f.epoch = 0;
      f.turn = 0;
      f.open.clear();
      f.groups.clear();
      getcontext(&f.context);
      f.context.uc_stack.ss_sp = f.stack.get();
      f.context.uc_stack.ss_size = kStack;
      f.context.uc_link = nullptr;
      makecontext(&f.context, &Block::entry, 0);
    }
    current = 0;
    threadIdx = dim3(0);
    swapcontext(&launcher, &fibers[0].context);
  }
};
inline thread_local Block* t_block = nullptr;

// A fiber's life: the kernel, then over to the others for good.
inline void Block::entry() {
  Block& block = *t_block;
  block.kernel();
  block.fiber().finished = true;  // copies it never waited for are dropped: nothing reads them
  block.stalled = 0;
  block.next();
}

inline int lane() { return int(threadIdx.x % 32); }
// A warp-collective operation: fill my_slot(), exchange(), read slot(l), done().
inline Block::Lane& my_slot() { return t_block->exchange[t_block->fiber().turn][threadIdx.x]; }
inline void exchange() { t_block->wait(t_block->warps[threadIdx.x / 32]); }
inline const Block::Lane& slot(int l) {
  return t_block->exchange[t_block->fiber().turn][threadIdx.x / 32 * 32 + unsigned(l)];
}
inline void done() { t_block->fiber().turn ^= 1; }

// Runs kernel() as every thread of every block of the grid (x fastest).
template <class Kernel>
void launch(dim3 grid, int threads, size_t smem_bytes, Kernel kernel) {
  if (threads % 32 != 0) fail("block size must be whole warps");
  Block block(threads, smem_bytes);
  block.kernel = kernel;
  Block* outer = t_block;
  t_block = &block;
  blockDim = dim3(unsigned(threads));
  gridDim = grid;
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) block.run(dim3(bx, by));
  t_block = outer;
}

}  // namespace ptune::emulation

#define PTUNE_DYNAMIC_SMEM(name) unsigned char* name = ::ptune::emulation::t_block->shared()

// --- CUDA builtins ---------------------------------------------------------

inline void __syncthreads() { ptune::emulation::t_block->wait(ptune::emulation::t_block->all); }

inline float __shfl_xor_sync(unsigned mask, float v, int offset) {
  using namespace ptune::emulation;
  if (mask != 0xffffffffu) fail("__shfl_xor_sync: only full-warp masks are emulated");
  my_slot().f = v;
  exchange();
  const float r = slot(lane() ^ offset).f;
  done();
  return r;
}

inline bool __all_sync(unsigned mask, bool v) {
  using namespace ptune::emulation;
  if (mask != 0xffffffffu) fail("__all_sync: only full-warp masks are emulated");
  my_slot().b = v;
  exchange();
  bool all = true;
  for (int l = 0; l < 32; ++l) all = all && slot(l).b;
  done();
  return all;
}

// --- the helpers of common.cuh that head_norm.cuh uses ----------------------

namespace ptune::ops::cuda {
inline float to_f(float x) { return x; }
inline float to_f(bf16 x) { return __bfloat162float(x); }
template <class T>
T from_f(float x);
template <>
inline float from_f<float>(float x) { return x; }
template <>
inline bf16 from_f<bf16>(float x) { return __float2bfloat16_rn(x); }
inline float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
}  // namespace ptune::ops::cuda

// --- the warp primitives of attention_mma.cuh -------------------------------

namespace ptune::ops::cuda::mma {

inline void cp_async_16(void* dst, const void* src, bool valid) {
  using namespace ptune::emulation;
  if (!t_block->in_shared(dst, 16)) fail("cp.async destination outside shared memory");
  if (reinterpret_cast<uintptr_t>(dst) % 16 != 0 || (valid && reinterpret_cast<uintptr_t>(src) % 16 != 0))
    fail("cp.async address not 16-byte aligned");
  t_block->fiber().open.push_back({dst, src, valid, t_block->fiber().epoch});
}
inline void cp_async_commit() {
  using namespace ptune::emulation;
  Fiber& f = t_block->fiber();
  f.groups.push_back(std::move(f.open));
  f.open.clear();
}
// Lands every committed group but the newest N (copies not yet committed
// stay in flight, as on the hardware).
template <int N>
inline void cp_async_wait() {
  using namespace ptune::emulation;
  auto& groups = t_block->fiber().groups;
  while (groups.size() > size_t(N)) {
    for (const Copy& c : groups.front()) {
      t_block->landed(c);
      if (c.valid) std::memcpy(c.dst, c.src, 16);
      else std::memset(c.dst, 0, 16);
    }
    groups.erase(groups.begin());
  }
}

namespace detail {
inline uint16_t element(const void* row, int col) { return static_cast<const uint16_t*>(row)[col]; }
// ldmatrix .x4 (see attention_mma.cuh): lane l addresses row l % 8 of
// matrix l / 8; register i of lane 4g + t gets M_i[g][2t, 2t+1], or with
// .trans M_i[2t, 2t+1][g].
inline void ldmatrix(uint32_t (&r)[4], const void* p, bool trans) {
  using namespace ptune::emulation;
  if (!t_block->in_shared(p, 16)) fail("ldmatrix row outside shared memory");
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0) fail("ldmatrix row not 16-byte aligned");
  t_block->read(p);
  my_slot().ptr = p;
  exchange();
  const int g = lane() / 4, t = lane() % 4;
  for (int i = 0; i < 4; ++i) {
    const uint16_t lo = trans ? element(slot(8 * i + 2 * t).ptr, g) : element(slot(8 * i + g).ptr, 2 * t);
    const uint16_t hi = trans ? element(slot(8 * i + 2 * t + 1).ptr, g) : element(slot(8 * i + g).ptr, 2 * t + 1);
    r[i] = uint32_t(lo) | uint32_t(hi) << 16;
  }
  done();
}
inline float low(uint32_t u) { return __bfloat162float({uint16_t(u & 0xffffu)}); }
inline float high(uint32_t u) { return __bfloat162float({uint16_t(u >> 16)}); }
}  // namespace detail

inline void ldmatrix_x4(uint32_t (&r)[4], const void* p) { detail::ldmatrix(r, p, false); }

inline void st_shared_b32(void* p, uint32_t v) {
  using namespace ptune::emulation;
  if (!t_block->in_shared(p, 4) || reinterpret_cast<uintptr_t>(p) % 4 != 0)
    fail("st.shared outside shared memory or not 4-byte aligned");
  t_block->wrote(p);
  std::memcpy(p, &v, 4);
}

// Blocks run one at a time, so a plain add is atomic here.
inline void red_add_f32x2(float* p, float x, float y) {
  if (reinterpret_cast<uintptr_t>(p) % 8 != 0) ptune::emulation::fail("red.v2.f32 address not 8-byte aligned");
  p[0] += x;
  p[1] += y;
}
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { detail::ldmatrix(r, p, true); }

// c += a · b, m16n8k16: the warp's fragments are gathered into A (16 × 16)
// and B (16 × 8), and each lane sums its four C elements in f32.
inline void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  using namespace ptune::emulation;
  using detail::high;
  using detail::low;
  Block::Lane& mine = my_slot();
  std::copy(a, a + 4, mine.regs);
  mine.regs[4] = b0;
  mine.regs[5] = b1;
  exchange();
  float A[16][16], B[16][8];
  for (int l = 0; l < 32; ++l) {
    const uint32_t* r = slot(l).regs;
    const int g = l / 4, t = l % 4;
    A[g][2 * t] = low(r[0]), A[g][2 * t + 1] = high(r[0]);
    A[g + 8][2 * t] = low(r[1]), A[g + 8][2 * t + 1] = high(r[1]);
    A[g][2 * t + 8] = low(r[2]), A[g][2 * t + 9] = high(r[2]);
    A[g + 8][2 * t + 8] = low(r[3]), A[g + 8][2 * t + 9] = high(r[3]);
    B[2 * t][g] = low(r[4]), B[2 * t + 1][g] = high(r[4]);
    B[2 * t + 8][g] = low(r[5]), B[2 * t + 9][g] = high(r[5]);
  }
  done();
  const int g = lane() / 4, t = lane() % 4;
  for (int e = 0; e < 4; ++e) {
    const int row = e < 2 ? g : g + 8, col = 2 * t + (e & 1);
    float sum = 0.0f;
    for (int k = 0; k < 16; ++k) sum += A[row][k] * B[k][col];
    c[e] += sum;
  }
}

inline float exp2_approx(float x) { return std::exp2(x); }

}  // namespace ptune::ops::cuda::mma
