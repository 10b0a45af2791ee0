// How a backward op stores into its gradient buffer.
#pragma once

#include <cstdint>

namespace ptune::ops {

// kAdd (the default, llm.c's convention): dx += ∂L/∂x, so branches of a
// residual stream and micro-batches add up in a buffer the caller zeroed.
// kWrite: dx = ∂L/∂x, for the caller that is the buffer's first writer. It
// spares the zero-fill pass and the read of the old contents (a GEMM with
// beta 0), and the buffer may hold garbage (recycled arena memory, NaN
// included): every element is overwritten. Into a zeroed buffer both modes
// give the same values.
enum class GradMode : uint8_t { kAdd, kWrite };

}  // namespace ptune::ops
