// Bit-reproducible GPU runs. Two GPU choices trade it for speed: cuBLASLt's
// algorithm is picked by timing once per GEMM shape (two runs can pick
// different ones, which round differently), and the flash backward adds dQ
// with f32 atomics in whatever order blocks finish. PTUNE_DETERMINISTIC=1
// turns both off — the heuristic's first algorithm, dQ in blocks of its
// own — so two runs of a job on the same GPU and build give the same bits,
// at a measured cost (docs/cuda.md). The CPU is deterministic either way.
// Read once, at the first query; a value other than 0 or 1 is an error.
#pragma once

#include <string_view>

namespace ptune::ops {

bool deterministic();

// PTUNE_DETERMINISTIC's value as a setting ("", "0": off; "1": on); any
// other value throws, naming the variable.
bool parse_deterministic(std::string_view value);

// Switches deterministic mode until destroyed, then restores the previous
// setting. For tests.
class ScopedDeterministic {
 public:
  explicit ScopedDeterministic(bool on);
  ~ScopedDeterministic();
  ScopedDeterministic(const ScopedDeterministic&) = delete;
  ScopedDeterministic& operator=(const ScopedDeterministic&) = delete;

 private:
  bool previous_;
};

}  // namespace ptune::ops
