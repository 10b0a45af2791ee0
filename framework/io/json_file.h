// Reading and writing JSON files with errors that name the file and, for
// syntax errors, the line and column.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace ptune::io {

// Throws ptune::Error "FILE:LINE:COL: invalid JSON: …" on a syntax error,
// "FILE: invalid JSON: …" on a number beyond double, or "cannot read FILE:
// …" when the file cannot be opened.
nlohmann::json read_json_file(const std::string& path);

// Parses `text`; `origin` names where it came from in error messages
// (a path, or "the header of FILE").
nlohmann::json parse_json(std::string_view text, const std::string& origin);

// nlohmann's message without its "[json.exception.…] " prefix.
std::string_view json_error_text(const nlohmann::json::exception& e);

// Pretty-printed (2-space indent, trailing newline), written atomically.
void write_json_file(const std::string& path, const nlohmann::json& value);

// The whole file as bytes; errors name the file.
std::string read_text_file(const std::string& path);

}  // namespace ptune::io
