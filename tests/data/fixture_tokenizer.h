// The committed fixture tokenizers (tests/golden/fixtures/tokenizers/NAME),
// with tokenizer.json's own truncation and padding off, as transformers
// ignores them.
#pragma once

#include <optional>
#include <string>

#include "framework/text/tokenizer.h"

namespace ptune::testing {

inline text::Tokenizer fixture_tokenizer(const std::string& name) {
  auto t = text::Tokenizer::from_file(std::string(PTUNE_FIXTURES) + "/tokenizers/" + name + "/tokenizer.json");
  t.set_truncation(std::nullopt);
  t.set_padding(std::nullopt);
  return t;
}

}  // namespace ptune::testing
