// AdamW and gradient clipping against torch (fixtures from
// tests/golden/gen_optimizer_fixtures.py).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <omp.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "framework/train/clip.h"
#include "framework/train/optimizer.h"
#include "train_test_util.h"

namespace ptune::train {
namespace {

using testing::fixture;
using testing::load_into;
using testing::make_abc;
using testing::max_rel_error;

TEST(AdamW, MatchesTorchThreeSteps) {
  const io::SafetensorsFile file = io::SafetensorsFile::open(fixture("adamw.safetensors"));
  const nlohmann::json configs = nlohmann::json::parse(file.metadata().at("configs"));
  int checked = 0;
  for (const auto& [key, cfg] : configs.items()) {
    if (key == "versions") continue;
    SCOPED_TRACE(key);
    ParameterSet set = make_abc();
    OptimizerOptions options;
    options.weight_decay = cfg["weight_decay"].get<float>();
    options.beta1 = cfg["betas"][0].get<float>();
    options.beta2 = cfg["betas"][1].get<float>();
    options.eps = cfg["eps"].get<float>();
    AdamW adamw(options, set);
    load_into(set, set.values(), file, key + "/p0");
    const auto lrs = cfg["lrs"].get<std::vector<double>>();
    for (size_t k = 1; k <= lrs.size(); ++k) {
      load_into(set, set.grads(), file, key + "/grad" + std::to_string(k));
      adamw.step(set, lrs[k - 1]);
      EXPECT_LE(max_rel_error(set, set.values(), file, key + "/p" + std::to_string(k)), 1e-6) << "step " << k;
    }
    // Beyond the 1e-6 contract: the kernel pins every rounding (explicit
    // fmaf, no other contraction), so it is torch's result to the bit; this
    // also tells the two branches of torch's lerp apart.
    EXPECT_EQ(max_rel_error(set, set.values(), file, key + "/p3"), 0.0);
    EXPECT_EQ(max_rel_error(set, adamw.exp_avg(), file, key + "/exp_avg"), 0.0);
    EXPECT_EQ(adamw.steps(), 3);
    EXPECT_LE(max_rel_error(set, adamw.exp_avg(), file, key + "/exp_avg"), 1e-6);
    EXPECT_LE(max_rel_error(set, adamw.exp_avg_sq(), file, key + "/exp_avg_sq", 1e-9), 1e-6);
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST(AdamW, DecayExemptEntryIsNotDecayed) {
  // With zero gradients m = v = 0, so only the decay moves a parameter.
  ParameterSet set = make_abc();
  OptimizerOptions options;
  options.weight_decay = 0.5f;
  AdamW adamw(options, set);
  float* p = set.values().data<float>();
  for (int64_t i = 0; i < set.numel(); ++i) p[i] = 2.0f;
  adamw.step(set, 0.1);
  const float decayed = float(2.0f * float(1.0 - 0.1 * 0.5));
  for (const ParameterSet::Entry& e : set.entries())
    for (int64_t i = e.offset; i < e.offset + e.shape.numel(); ++i)
      EXPECT_EQ(p[i], e.decay == Decay::kApply ? decayed : 2.0f) << e.name;
}

TEST(AdamW, LoadStateResumesIdentically) {
  const io::SafetensorsFile file = io::SafetensorsFile::open(fixture("adamw.safetensors"));
  OptimizerOptions options;
  options.weight_decay = 0.1f;
  ParameterSet a = make_abc(), b = make_abc();
  AdamW opt_a(options, a), opt_b(options, b);
  load_into(a, a.values(), file, "wd/p0");
  load_into(a, a.grads(), file, "wd/grad1");
  opt_a.step(a, 1e-3);
  // b takes over a's state after one step; both then take step 2.
  Tensor(b.values()).copy_from(a.values());
  opt_b.load_state(opt_a.steps(), opt_a.exp_avg(), opt_a.exp_avg_sq());
  load_into(a, a.grads(), file, "wd/grad2");
  Tensor(b.grads()).copy_from(a.grads());
  opt_a.step(a, 5e-2);
  opt_b.step(b, 5e-2);
  EXPECT_EQ(std::memcmp(a.values().raw(), b.values().raw(), a.values().nbytes()), 0);
  EXPECT_EQ(opt_b.steps(), 2);
}

TEST(AdamW, RejectsBadInput) {
  ParameterSet set = make_abc();
  OptimizerOptions bad;
  bad.beta2 = 1.0f;
  testing::expect_error([&] { AdamW(bad, set); }, {"beta2"});
  AdamW adamw(OptimizerOptions{}, set);
  testing::expect_error([&] { adamw.step(set, std::nan("")); }, {"learning rate"});
  testing::expect_error([&] { adamw.load_state(1, Tensor::zeros({3}, DType::kF32), Tensor::zeros({3}, DType::kF32)); },
                        {"exp_avg"});
  ParameterSet unfinished;
  unfinished.add("x", {2});
  testing::expect_error([&] { AdamW(OptimizerOptions{}, unfinished); }, {"finalized"});
}

TEST(ClipGradNorm, MatchesTorch) {
  const io::SafetensorsFile file = io::SafetensorsFile::open(fixture("clip.safetensors"));
  const nlohmann::json cases = nlohmann::json::parse(file.metadata().at("cases"));
  int checked = 0;
  for (const auto& [key, max_norm] : cases.items()) {
    if (key == "versions") continue;
    SCOPED_TRACE(key);
    ParameterSet set = make_abc();
    load_into(set, set.grads(), file, key + "/grad");
    const double norm = clip_grad_norm(set, max_norm.get<double>());
    const float torch_norm = file.load(key + "/total_norm").data<float>()[0];
    EXPECT_NEAR(norm, torch_norm, 1e-6 * torch_norm);
    EXPECT_LE(max_rel_error(set, set.grads(), file, key + "/clipped"), 1e-6);
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST(ClipGradNorm, HandComputedAndNonFinite) {
  ParameterSet set = make_abc();
  float* g = set.grads().data<float>();
  g[0] = 3.0f;
  g[13] = 4.0f;  // in "b"
  EXPECT_DOUBLE_EQ(grad_norm(set), 5.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm(set, 0.0), 5.0);  // 0: measure only
  EXPECT_EQ(g[0], 3.0f);
  EXPECT_DOUBLE_EQ(clip_grad_norm(set, 1.0), 5.0);
  EXPECT_NEAR(g[0], 0.6f, 1e-6);
  EXPECT_NEAR(g[13], 0.8f, 1e-6);
  EXPECT_TRUE(all_finite(set.grads()));

  g[5] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(all_finite(set.grads()));
  const double norm = clip_grad_norm(set, 1.0);
  EXPECT_FALSE(is_finite(norm));
  EXPECT_NEAR(g[0], 0.6f, 1e-6);  // left untouched for the caller to skip the step
  EXPECT_FALSE(is_finite(std::nan("")));
  EXPECT_TRUE(is_finite(1e300));
}

TEST(ClipGradNorm, SameBitsWhateverTheThreadCount) {
  ParameterSet set;
  set.add("w", {100003});
  set.finalize();
  float* g = set.grads().data<float>();
  for (int64_t i = 0; i < set.numel(); ++i) g[i] = float(std::sin(double(i))) * 1e-3f * float(1 + i % 7);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = grad_norm(set);
  omp_set_num_threads(2);
  const double two = grad_norm(set);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, two);
}

}  // namespace
}  // namespace ptune::train
