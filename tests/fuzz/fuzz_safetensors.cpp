// A .safetensors file's bytes: opened (header, offsets, dtypes, shapes) and
// every tensor loaded as f32.
#include <unistd.h>

#include <fstream>
#include <string>

#include "framework/io/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/ptune_fuzz_" + std::to_string(::getpid()) + ".safetensors";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  ptune::fuzz::expect_clean([&] {
    const auto file = ptune::io::SafetensorsFile::open(path);
    for (const std::string& name : file.names()) (void)file.load(name);
  });
  return 0;
}
