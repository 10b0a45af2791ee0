// Errors are exceptions that carry context (file, key, line, shape…).
// Library code never exits or aborts: it throws ptune::Error, and `main`
// prints it (with the rank) and brings the job down.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace ptune {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
[[noreturn]] void fail(const char* file, int line, const char* condition, const std::string& message);
}  // namespace detail

}  // namespace ptune

// PTUNE_CHECK(cond, "format {}", args...): throws ptune::Error with the
// formatted message when cond is false.
#define PTUNE_CHECK(cond, ...)                                                       \
  do {                                                                               \
    if (!(cond)) [[unlikely]]                                                        \
      ::ptune::detail::fail(__FILE__, __LINE__, #cond, ::fmt::format(__VA_ARGS__)); \
  } while (0)

// PTUNE_FAIL("format {}", args...): throws unconditionally.
#define PTUNE_FAIL(...) ::ptune::detail::fail(__FILE__, __LINE__, nullptr, ::fmt::format(__VA_ARGS__))
