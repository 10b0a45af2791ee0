#include "framework/ops/candidates.h"

#include <array>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "framework/core/error.h"

namespace ptune::ops {

namespace {

constexpr std::array<std::pair<std::string_view, Candidate>, 4> kNames{{
    {"forward32", Candidate::kForward32},
    {"backward32", Candidate::kBackward32},
    {"one_launch", Candidate::kOneLaunch},
    {"gemm_autotune", Candidate::kGemmAutotune},
}};

}  // namespace

bool candidate_enabled(Candidate c) {
  const char* env = std::getenv("PTUNE_CANDIDATES");
  if (env == nullptr || env[0] == '\0' || std::string_view(env) == "0") return false;
  if (std::string_view(env) == "1") return true;
  bool on = false;
  for (std::string_view rest = env; !rest.empty();) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    bool known = false;
    for (const auto& [name, candidate] : kNames) {
      if (item != name) continue;
      known = true;
      on = on || candidate == c;
    }
    PTUNE_CHECK(known, "PTUNE_CANDIDATES: unknown candidate '{}' (forward32, backward32, one_launch, gemm_autotune, "
                "or 1 for all)", item);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return on;
}

}  // namespace ptune::ops
