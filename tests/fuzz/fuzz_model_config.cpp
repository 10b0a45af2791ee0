// A model directory's config.json text: parsed into a ModelSpec.
#include <nlohmann/json.hpp>

#include "framework/model/spec.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json config = nlohmann::json::parse(ptune::fuzz::text(data, size), nullptr, false);
  if (config.is_discarded()) return 0;  // not JSON: read_json_file's error, tested elsewhere
  ptune::fuzz::expect_clean([&] { (void)ptune::model::ModelSpec::from_config(config, "config.json"); });
  return 0;
}
