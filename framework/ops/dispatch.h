// Ops run where their tensors live. The CPU implementation is the reference;
// until a CUDA implementation of an op is registered here, an op given GPU
// tensors fails with a clear message instead of reading device memory.
#pragma once

#include "framework/core/error.h"

#define PTUNE_REQUIRE_CPU(tensor, op)                                                           \
  PTUNE_CHECK((tensor).device().is_cpu(), "{}: no kernel for tensors on {} in this build", op, \
              (tensor).device().str())
