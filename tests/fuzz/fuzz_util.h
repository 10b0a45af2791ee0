// Shared by the fuzz targets (libFuzzer, scripts/fuzz.sh): bad input
// must end in a ptune::Error that names what was wrong. Any other
// exception escaping a parser is a finding too: the CLI would print its
// bare what() with no file, line or key, so the target aborts on it and
// libFuzzer saves the input.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "framework/core/error.h"

namespace ptune::fuzz {

inline std::string_view text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs f; a ptune::Error is the expected answer to bad input.
template <class F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const ptune::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "escaped as a non-ptune exception: %s\n", e.what());
    std::abort();
  }
}

}  // namespace ptune::fuzz
