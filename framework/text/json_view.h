// Read-only access to tokenizer.json that names the failing key: every
// error says which file and which key path ("model.merges[12]") was wrong.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ptune::text {

class JsonView {
 public:
  JsonView(const nlohmann::json& j, std::string origin, std::string path = "")
      : j_(&j), origin_(std::move(origin)), path_(std::move(path)) {}

  const nlohmann::json& raw() const { return *j_; }
  const std::string& path() const { return path_; }
  const std::string& origin() const { return origin_; }
  bool is_null() const { return j_->is_null(); }
  bool is_object() const { return j_->is_object(); }
  bool is_array() const { return j_->is_array(); }
  bool is_string() const { return j_->is_string(); }
  bool has(std::string_view key) const;  // present and not null

  // A required key; throws naming it when missing.
  JsonView at(std::string_view key) const;
  // An optional key: nullopt when missing or null.
  std::optional<JsonView> find(std::string_view key) const;
  JsonView at(std::size_t index) const;
  std::size_t size() const;

  std::string str() const;
  bool boolean() const;
  int64_t integer() const;
  uint32_t id() const;  // a non-negative 32-bit integer
  // A number as Hugging Face's tokenizers reads it (serde_json without its
  // float_roundtrip feature): not always the nearest double (see the .cpp).
  double number() const;

  // Optional scalars with defaults.
  std::string str_or(std::string_view key, std::string_view fallback) const;
  bool bool_or(std::string_view key, bool fallback) const;
  int64_t int_or(std::string_view key, int64_t fallback) const;

  [[noreturn]] void fail(std::string_view what) const;

 private:
  std::string child(std::string_view key) const;

  const nlohmann::json* j_;
  std::string origin_;
  std::string path_;
};

// The value as exactly one Unicode character (e.g. a Metaspace
// replacement); errors name the key.
char32_t single_char(const JsonView& j);

}  // namespace ptune::text
