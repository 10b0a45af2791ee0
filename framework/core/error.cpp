#include "framework/core/error.h"

#include <cstring>

namespace ptune::detail {

void fail(const char* file, int line, const char* condition, const std::string& message) {
  // Keep only the path below the repository root: messages stay short.
  const char* short_file = std::strstr(file, "framework/");
  if (short_file == nullptr) short_file = file;
  if (condition != nullptr)
    throw Error(fmt::format("{} [{}:{}: check `{}` failed]", message, short_file, line, condition));
  throw Error(fmt::format("{} [{}:{}]", message, short_file, line));
}

}  // namespace ptune::detail
