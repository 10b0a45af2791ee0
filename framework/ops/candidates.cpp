#include "framework/ops/candidates.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <string>
#include <utility>

#include "framework/core/error.h"

namespace ptune::ops {

namespace {

constexpr std::array<std::pair<std::string_view, Candidate>, 7> kNames{{
    {"forward32", Candidate::kForward32},
    {"backward32", Candidate::kBackward32},
    {"one_launch", Candidate::kOneLaunch},
    {"gemm_autotune", Candidate::kGemmAutotune},
    {"rope_vec", Candidate::kRopeVec},
    {"dq_atomic", Candidate::kDqAtomic},
    {"norm_warp", Candidate::kNormWarp},
}};

constexpr uint32_t bit(Candidate c) { return uint32_t(1) << uint32_t(c); }

constexpr uint32_t kUnread = ~uint32_t(0);  // PTUNE_CANDIDATES not read yet
std::atomic<uint32_t> g_selected{kUnread};

uint32_t selected() {
  uint32_t s = g_selected.load(std::memory_order_acquire);
  if (s == kUnread) {
    const char* env = std::getenv("PTUNE_CANDIDATES");
    s = parse_candidates(env ? env : "");
    g_selected.store(s, std::memory_order_release);
  }
  return s;
}

}  // namespace

uint32_t parse_candidates(std::string_view spec) {
  if (spec.empty() || spec == "0") return 0;
  uint32_t all = 0;
  for (const auto& entry : kNames) all |= bit(entry.second);
  if (spec == "1") return all;
  uint32_t set = 0;
  for (std::string_view rest = spec; !rest.empty();) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    uint32_t match = 0;
    std::string known;  // for the error: the names, from the one table
    for (const auto& [name, candidate] : kNames) {
      if (item == name) match = bit(candidate);
      known += std::string(name) + ", ";
    }
    PTUNE_CHECK(match != 0, "PTUNE_CANDIDATES: unknown candidate '{}' ({}or 1 for all)", item, known);
    set |= match;
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return set;
}

bool candidate_enabled(Candidate c) { return (selected() & bit(c)) != 0; }

ScopedCandidates::ScopedCandidates(std::string_view spec) : previous_(selected()) {
  g_selected.store(parse_candidates(spec), std::memory_order_release);
}

ScopedCandidates::~ScopedCandidates() { g_selected.store(previous_, std::memory_order_release); }

}  // namespace ptune::ops
