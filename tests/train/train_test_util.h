// Helpers shared by the train tests: the fixture folder, the three-entry
// parameter set the generator used, and a scratch directory.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "framework/core/parameters.h"
#include "framework/io/safetensors.h"
#include "expect_error.h"

namespace ptune::train::testing {

using ptune::testing::expect_error;

inline std::string fixture(const std::string& name) { return std::string(PTUNE_FIXTURES) + "/optimizer/" + name; }

// "a" (3, 4) decay, "b" (5,) exempt, "c" (2, 3) decay: gen_optimizer_fixtures.py's SHAPES.
inline ParameterSet make_abc() {
  ParameterSet set;
  set.add("a", {3, 4}, Decay::kApply);
  set.add("b", {5}, Decay::kExempt);
  set.add("c", {2, 3}, Decay::kApply);
  set.finalize();
  return set;
}

// Copies file tensors "<prefix>/<name>" into the matching views of `flat`.
inline void load_into(const ParameterSet& set, const Tensor& flat, const io::SafetensorsFile& file,
                      const std::string& prefix) {
  for (const ParameterSet::Entry& e : set.entries())
    flat.slice(e.offset, e.offset + e.shape.numel()).copy_from(file.load(prefix + "/" + e.name).view({e.shape.numel()}));
}

// max over elements of |x - ref| / max(|ref|, floor).
inline double max_rel_error(const ParameterSet& set, const Tensor& flat, const io::SafetensorsFile& file,
                            const std::string& prefix, double floor = 1e-3) {
  double worst = 0.0;
  for (const ParameterSet::Entry& e : set.entries()) {
    const Tensor ref = file.load(prefix + "/" + e.name);
    const float* r = ref.data<float>();
    const float* x = flat.data<float>() + e.offset;
    for (int64_t i = 0; i < e.shape.numel(); ++i)
      worst = std::max(worst, std::abs(double(x[i]) - double(r[i])) / std::max(std::abs(double(r[i])), floor));
  }
  return worst;
}

class ScratchDir : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() / (std::string("ptune_train_") + info->test_suite_name() + "_" +
                                                     info->name() + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

}  // namespace ptune::train::testing
