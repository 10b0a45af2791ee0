#include "framework/text/json_view.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "framework/core/error.h"
#include "framework/text/unicode.h"

namespace ptune::text {

namespace {
const char* type_name(const nlohmann::json& j) { return j.type_name(); }
}  // namespace

std::string JsonView::child(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void JsonView::fail(std::string_view what) const {
  PTUNE_FAIL("{}: key '{}': {}", origin_, path_.empty() ? "<root>" : path_, what);
}

bool JsonView::has(std::string_view key) const {
  if (!j_->is_object()) return false;
  const auto it = j_->find(key);
  return it != j_->end() && !it->is_null();
}

JsonView JsonView::at(std::string_view key) const {
  if (!j_->is_object()) fail(fmt::format("expected an object, got {}", type_name(*j_)));
  const auto it = j_->find(key);
  if (it == j_->end()) PTUNE_FAIL("{}: missing key '{}'", origin_, child(key));
  return JsonView(*it, origin_, child(key));
}

std::optional<JsonView> JsonView::find(std::string_view key) const {
  if (!j_->is_object()) fail(fmt::format("expected an object, got {}", type_name(*j_)));
  const auto it = j_->find(key);
  if (it == j_->end() || it->is_null()) return std::nullopt;
  return JsonView(*it, origin_, child(key));
}

JsonView JsonView::at(std::size_t index) const {
  if (!j_->is_array()) fail(fmt::format("expected an array, got {}", type_name(*j_)));
  if (index >= j_->size()) fail(fmt::format("index {} out of range", index));
  return JsonView((*j_)[index], origin_, fmt::format("{}[{}]", path_, index));
}

std::size_t JsonView::size() const {
  if (!j_->is_array() && !j_->is_object()) fail(fmt::format("expected an array, got {}", type_name(*j_)));
  return j_->size();
}

std::string JsonView::str() const {
  if (!j_->is_string()) fail(fmt::format("expected a string, got {}", type_name(*j_)));
  return j_->get<std::string>();
}

bool JsonView::boolean() const {
  if (!j_->is_boolean()) fail(fmt::format("expected a boolean, got {}", type_name(*j_)));
  return j_->get<bool>();
}

int64_t JsonView::integer() const {
  if (!j_->is_number_integer()) fail(fmt::format("expected an integer, got {}", type_name(*j_)));
  return j_->get<int64_t>();
}

uint32_t JsonView::id() const {
  const int64_t v = integer();
  if (v < 0 || v > std::numeric_limits<uint32_t>::max()) fail(fmt::format("id {} out of range", v));
  return static_cast<uint32_t>(v);
}

namespace {

// serde_json (as the tokenizers crate builds it, without float_roundtrip)
// reads a decimal as its significand (u64) → f64, then one multiplication
// or division by 10^|exponent| — two roundings, so a 17-digit value can land
// one unit in the last place from the nearest double (−2.7744175790402394
// reads as −2.774417579040239). Unigram's Viterbi breaks near-ties on those
// bits, so ptune reads numbers the same way. The JSON library keeps the
// nearest double, not the text; the text tokenizers writes is the shortest
// decimal that round-trips the value (ryu), which std::to_chars gives back.
double as_serde_json_reads(double v) {
  if (!std::isfinite(v) || v == 0.0) return v;
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  PTUNE_CHECK(ec == std::errc(), "formatting {} failed", v);
  // buf: [-]d[.ddd]e±xx
  const std::string_view text(buf, std::size_t(end - buf));
  const std::size_t e = text.find('e');
  uint64_t significand = 0;
  int digits = 0;
  for (const char c : text.substr(0, e))
    if (c >= '0' && c <= '9') {
      significand = significand * 10 + uint64_t(c - '0');
      ++digits;
    }
  int exponent = std::atoi(std::string(text.substr(e + 1)).c_str()) - (digits - 1);
  // serde_json's powers of ten are f64 literals: correctly rounded, as strtod gives them.
  const auto pow10 = [](int k) { return std::strtod(fmt::format("1e{}", k).c_str(), nullptr); };
  double f = double(significand);
  if (exponent >= 0) {
    f *= pow10(exponent);
  } else {
    if (exponent < -308) {
      f /= 1e308;
      exponent += 308;
    }
    f /= pow10(-exponent);
  }
  return v < 0 ? -f : f;
}

}  // namespace

double JsonView::number() const {
  if (!j_->is_number()) fail(fmt::format("expected a number, got {}", type_name(*j_)));
  // Integers (no fraction, no exponent) are read exactly by both libraries.
  if (!j_->is_number_float()) return j_->get<double>();
  return as_serde_json_reads(j_->get<double>());
}

std::string JsonView::str_or(std::string_view key, std::string_view fallback) const {
  const auto v = find(key);
  return v ? v->str() : std::string(fallback);
}

bool JsonView::bool_or(std::string_view key, bool fallback) const {
  const auto v = find(key);
  return v ? v->boolean() : fallback;
}

int64_t JsonView::int_or(std::string_view key, int64_t fallback) const {
  const auto v = find(key);
  return v ? v->integer() : fallback;
}

char32_t single_char(const JsonView& j) {
  const std::string s = j.str();
  std::size_t i = 0;
  if (s.empty() || find_invalid_utf8(s) != std::string::npos) j.fail("expected one character");
  const char32_t c = next_code_point(s, i);
  if (i != s.size()) j.fail("expected one character");
  return c;
}

}  // namespace ptune::text
