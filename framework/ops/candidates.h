// Kernels under evaluation. A kernel that passes its tests but has not yet
// been measured faster on the hardware it targets stays opt-in until a
// benchmark decides, so a session without that hardware can still prepare
// one run that settles it. PTUNE_CANDIDATES selects them: a comma-separated
// list of the names below, or 1 for all; it is read once, at the first
// query, and an unknown name is an error. Tests switch candidates with
// ScopedCandidates. docs/cuda.md keeps the list and what each may gain.
#pragma once

#include <cstdint>
#include <string_view>

namespace ptune::ops {

enum class Candidate : uint32_t {
  kForward32,     // "forward32": flash forward with 32 query rows a warp (D = 64)
  kBackward32,    // "backward32": flash dq and dkv with 32 rows a warp (D = 64)
  kOneLaunch,     // "one_launch": flash dq and dkv in one launch
  kGemmAutotune,  // "gemm_autotune": time cuBLASLt's candidate algorithms once per GEMM shape
  kRopeVec,       // "rope_vec": RoPE with 16-byte accesses
  kDqAtomic,      // "dq_atomic": flash dQ added by the dkv kernel (f32 atomics), no dq kernel
  kNormWarp,      // "norm_warp": norm kernels with a warp, not 128 threads, a row (4 chunks a thread)
};

bool candidate_enabled(Candidate c);

// The set a PTUNE_CANDIDATES value selects, one bit per Candidate ("", "0":
// none; "1": all); an unknown name throws, naming it.
uint32_t parse_candidates(std::string_view spec);

// Selects the candidates of `spec` (as PTUNE_CANDIDATES would) until
// destroyed, then restores the previous set. For tests.
class ScopedCandidates {
 public:
  explicit ScopedCandidates(std::string_view spec);
  ~ScopedCandidates();
  ScopedCandidates(const ScopedCandidates&) = delete;
  ScopedCandidates& operator=(const ScopedCandidates&) = delete;

 private:
  uint32_t previous_;
};

}  // namespace ptune::ops
