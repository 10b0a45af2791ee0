// A recipe: YAML text, then command-line overrides ("section.key=value"),
// the parts separated by \x1f. Parsed and validated; a recipe that parses
// dumps to YAML that parses back to the same dump.
#include <string>
#include <vector>

#include "framework/recipe/recipe.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (char c : ptune::fuzz::text(data, size)) {
    if (c == '\x1f') parts.emplace_back();
    else parts.back() += c;
  }
  const std::vector<std::string> overrides(parts.begin() + 1, parts.end());
  ptune::fuzz::expect_clean([&] {
    const ptune::recipe::Recipe r = ptune::recipe::parse_recipe(parts[0], "fuzz.yaml", overrides);
    const std::string dumped = ptune::recipe::dump_recipe(r);
    if (ptune::recipe::dump_recipe(ptune::recipe::parse_recipe(dumped, "dumped.yaml")) != dumped) std::abort();
  });
  return 0;
}
