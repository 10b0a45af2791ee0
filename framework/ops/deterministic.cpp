#include "framework/ops/deterministic.h"

#include <atomic>
#include <cstdlib>

#include "framework/core/error.h"

namespace ptune::ops {

namespace {

constexpr int kUnread = -1;  // PTUNE_DETERMINISTIC not read yet
std::atomic<int> g_setting{kUnread};

bool setting() {
  int s = g_setting.load(std::memory_order_acquire);
  if (s == kUnread) {
    const char* env = std::getenv("PTUNE_DETERMINISTIC");
    s = parse_deterministic(env ? env : "") ? 1 : 0;
    g_setting.store(s, std::memory_order_release);
  }
  return s == 1;
}

}  // namespace

bool parse_deterministic(std::string_view value) {
  PTUNE_CHECK(value.empty() || value == "0" || value == "1", "PTUNE_DETERMINISTIC={}: expected 0 or 1", value);
  return value == "1";
}

bool deterministic() { return setting(); }

ScopedDeterministic::ScopedDeterministic(bool on) : previous_(setting()) {
  g_setting.store(on ? 1 : 0, std::memory_order_release);
}

ScopedDeterministic::~ScopedDeterministic() { g_setting.store(previous_ ? 1 : 0, std::memory_order_release); }

}  // namespace ptune::ops
