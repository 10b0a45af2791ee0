// Kernels under evaluation. A kernel that passes its tests but has not yet
// been measured faster on the hardware it targets stays opt-in until a
// benchmark decides, so a session without that hardware can still prepare
// one run that settles it. PTUNE_CANDIDATES selects them: a comma-separated
// list of the names below, or 1 for all. It is read at every call, so tests
// and benchmarks compare both paths in one process; an unknown name is an
// error. docs/cuda.md keeps the list and what each is expected to gain.
#pragma once

namespace ptune::ops {

enum class Candidate {
  kForward32,     // "forward32": flash forward with 32 query rows a warp (D = 64)
  kBackward32,    // "backward32": flash dq and dkv with 32 rows a warp (D = 64)
  kOneLaunch,     // "one_launch": flash dq and dkv in one launch
  kGemmAutotune,  // "gemm_autotune": time cuBLASLt's candidate algorithms once per GEMM shape
};

bool candidate_enabled(Candidate c);

}  // namespace ptune::ops
