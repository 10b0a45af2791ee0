// Adapters trained and exported by ptune load in peft
// (PeftModel.from_pretrained) and give ptune's outputs: the result of
// tests/golden/check_adapter_interop.py, recorded in a fixture.
#include <gtest/gtest.h>

#include "framework/io/json_file.h"

namespace ptune {
namespace {

TEST(AdapterInterop, PeftLoadsPtuneAdaptersWithTheSameLogits) {
  const nlohmann::json record = io::read_json_file(std::string(PTUNE_FIXTURES) + "/interop/result.json");
  const auto& results = record["results"];
  for (const char* method : {"prompt-tuning", "p-tuning"}) {
    ASSERT_TRUE(results.contains(method)) << method;
    EXPECT_TRUE(results[method]["ok"].get<bool>()) << method;
    EXPECT_LT(results[method]["max_abs_diff"].get<double>(), 1e-4) << method;
    EXPECT_GE(results[method]["examples"].get<int>(), 32) << method;
  }
}

}  // namespace
}  // namespace ptune
