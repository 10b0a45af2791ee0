#include "framework/io/json_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "framework/core/error.h"
#include "framework/io/atomic_file.h"

namespace ptune::io {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  PTUNE_CHECK(in.is_open(), "cannot read {}: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  PTUNE_CHECK(!in.bad(), "cannot read {}: {}", path, std::strerror(errno));
  return std::move(ss).str();
}

nlohmann::json parse_json(std::string_view text, const std::string& origin) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based: the byte at which the parser gave up.
    const size_t end = std::min(text.size(), e.byte == 0 ? size_t(0) : size_t(e.byte - 1));
    size_t line = 1, column = 1;
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    // Drop nlohmann's "[json.exception.parse_error.101] parse error at line…: "
    // prefix: the position is given in our own terms.
    std::string_view what = e.what();
    if (const size_t p = what.find(": "); p != std::string_view::npos) what.remove_prefix(p + 2);
    PTUNE_FAIL("{}:{}:{}: invalid JSON: {}", origin, line, column, what);
  } catch (const nlohmann::json::exception& e) {  // well-formed but unrepresentable: a number beyond double
    PTUNE_FAIL("{}: invalid JSON: {}", origin, json_error_text(e));
  }
}

std::string_view json_error_text(const nlohmann::json::exception& e) {
  std::string_view what = e.what();
  if (const size_t p = what.find("] "); p != std::string_view::npos) what.remove_prefix(p + 2);
  return what;
}

nlohmann::json read_json_file(const std::string& path) { return parse_json(read_text_file(path), path); }

void write_json_file(const std::string& path, const nlohmann::json& value) {
  const std::string text = value.dump(2) + "\n";
  AtomicFileWriter out(path);
  out.write(text.data(), text.size());
  out.commit();
}

}  // namespace ptune::io
