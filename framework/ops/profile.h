// Per-op time, for `ptune bench --profile`: while enabled, every public op
// (PTUNE_ROUTE) is timed, on a GPU by two events on its stream, on the CPU
// by the host clock around the op's body. An op run inside another (the
// CPU's residual_norm_forward is add_forward then norm_forward) counts in
// the outer one only, so the rows add up to the step. collect() sums the
// times by op name. Disabled (the default) it costs one branch per op.
// Records come from a pool reused after reset(), so profiled steps stay
// allocation-free once warm.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/device.h"

namespace ptune::ops {

class OpProfile {
 public:
  static void enable(bool on);
  static bool enabled() { return enabled_; }
  // (op, total ms, calls) since the last reset, largest first; waits for
  // the recorded events.
  struct Row {
    std::string op;
    double ms = 0.0;
    int64_t calls = 0;
  };
  static std::vector<Row> collect();
  static void reset();

 private:
  static inline bool enabled_ = false;
};

// Starts timing on construction, stops on destruction.
class ProfileScope {
 public:
  ProfileScope(const char* op, Device device);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  int64_t slot_ = -1;  // -1: not recorded (profiling off, or inside another op)
  bool counted_ = false;  // holds a nesting level
  Device device_;
  std::chrono::steady_clock::time_point start_;  // CPU ops
};

}  // namespace ptune::ops
