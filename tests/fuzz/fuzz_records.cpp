// A data file's text in each format (JSONL, CSV, TSV, CoNLL).
#include "framework/data/reader.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ptune::data::Format;
  for (Format f : {Format::kJsonl, Format::kCsv, Format::kTsv, Format::kConll})
    ptune::fuzz::expect_clean([&] { (void)ptune::data::parse_records(ptune::fuzz::text(data, size), f, "fuzz.data"); });
  return 0;
}
