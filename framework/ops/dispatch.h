// Ops run where their tensors live. The CPU implementation is the
// reference; the first line of each public op routes GPU tensors to the
// CUDA implementation (ops/cuda/kernels.h) on the device's default stream.
// In a build without CUDA, or for an op that has no CUDA kernel yet
// (PTUNE_REQUIRE_CPU), GPU tensors fail with a clear message instead of
// reading device memory.
#pragma once

#include "framework/core/error.h"
#include "framework/ops/profile.h"

#define PTUNE_REQUIRE_CPU(tensor, op)                                                           \
  PTUNE_CHECK((tensor).device().is_cpu(), "{}: no kernel for tensors on {} in this build", op, \
              (tensor).device().str())

#ifdef PTUNE_CUDA
#include "framework/core/stream.h"
#include "framework/ops/cuda/kernels.h"

// PTUNE_ROUTE(x, op, args...): when x is on a GPU, returns
// ptune::ops::cuda::op(args..., default stream of x's device). The first
// statement of every public op; under `ptune bench --profile` the op is
// timed (ops/profile.h): the GPU call, or the rest of the CPU body (the
// scope it declares lives until the op returns).
#define PTUNE_ROUTE(tensor, op, ...)                                                                   \
  if ((tensor).device().is_cuda()) {                                                                   \
    const ::ptune::ops::ProfileScope profile_scope(#op, (tensor).device());                            \
    return ::ptune::ops::cuda::op(__VA_ARGS__, ::ptune::Stream::default_stream((tensor).device()));   \
  }                                                                                                    \
  const ::ptune::ops::ProfileScope ptune_op_profile_scope(#op, (tensor).device())
#else
#define PTUNE_ROUTE(tensor, op, ...) \
  PTUNE_REQUIRE_CPU(tensor, #op);    \
  const ::ptune::ops::ProfileScope ptune_op_profile_scope(#op, (tensor).device())
#endif
