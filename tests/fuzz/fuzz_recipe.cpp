// A recipe's YAML text: parsed and validated, and a recipe that parses
// dumps to YAML that parses back to the same dump.
#include <string>

#include "framework/recipe/recipe.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ptune::fuzz::expect_clean([&] {
    const ptune::recipe::Recipe r = ptune::recipe::parse_recipe(ptune::fuzz::text(data, size), "fuzz.yaml");
    const std::string dumped = ptune::recipe::dump_recipe(r);
    if (ptune::recipe::dump_recipe(ptune::recipe::parse_recipe(dumped, "dumped.yaml")) != dumped) std::abort();
  });
  return 0;
}
