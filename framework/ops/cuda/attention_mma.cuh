// Warp-level tensor-core primitives for the bf16 flash attention (sm_80+):
// cp.async global → shared copies, ldmatrix fragment loads, shared stores,
// f32 reductions into global memory and the mma.sync m16n8k16
// bf16 × bf16 → f32 product, as inline PTX or intrinsics.
//
// Fragment layouts of m16n8k16 (PTX ISA, "Matrix fragments for mma.m16n8k16"),
// with lane = 4·g + t (g = lane / 4 in 0..7, t = lane % 4 in 0..3):
//   A (16 × 16, row-major), 4 × b32 = 8 bf16:
//     a0 = A[g][2t, 2t+1]  a1 = A[g+8][2t, 2t+1]  a2 = A[g][2t+8, 2t+9]  a3 = A[g+8][2t+8, 2t+9]
//   B (16 × 8, k × n), 2 × b32:  b0 = B[2t, 2t+1][g]  b1 = B[2t+8, 2t+9][g]
//   C (16 × 8) f32, 4 floats:    c0, c1 = C[g][2t, 2t+1]  c2, c3 = C[g+8][2t, 2t+1]
// The lower-indexed element sits in the low 16 bits of a b32.
// (flash_attention.cuh's c_to_a turns two C tiles into an A fragment.)
//
// ldmatrix .x4: lane l gives the address of row l % 8 of 8×8 matrix l / 8
// (16 contiguous bytes); register i receives matrix i, lane holding
// M[g][2t, 2t+1] (or, with .trans, M[2t, 2t+1][g]).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace ptune::ops::cuda::mma {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global → shared without staging in registers; when !valid the
// destination is zero-filled and src is not read (it must still be a
// valid address, so callers pass the tensor base).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most N committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// A 4-byte store to shared memory (st.shared, not a generic store).
__device__ __forceinline__ void st_shared_b32(void* p, uint32_t v) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(smem_addr(p)), "r"(v) : "memory");
}

// p[0] += x, p[1] += y in global memory, atomically and without a result
// (a reduction): one vector red on sm_90, two scalar ones before. p is
// 8-byte aligned.
__device__ __forceinline__ void red_add_f32x2(float* p, float x, float y) {
#if __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2*>(p), make_float2(x, y));
#else
  atomicAdd(p, x);
  atomicAdd(p + 1, y);
#endif
}

// c += a · b for one 16 × 8 × 16 tile.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x on the SFU; 2^-inf = +0, which is what masked scores rely on.
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace ptune::ops::cuda::mma
