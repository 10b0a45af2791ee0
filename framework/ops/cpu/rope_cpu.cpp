#include <cmath>
#include <vector>

#include "framework/ops/dispatch.h"
#include "framework/ops/rope.h"

namespace ptune::ops {

namespace {

// sign +1 rotates by +a (forward), −1 by −a (backward: Rᵀ = R(−a)).
void rotate(const Tensor& qkv, const Tensor& position_ids, const Tensor& inv_freq, const AttentionConfig& cfg,
            float sign, float scale, const char* op) {
  PTUNE_CHECK(qkv.dim() == 3 && qkv.size(2) == cfg.qkv_width(), "{}: qkv {} for qkv width {}", op,
              qkv.shape().str(), cfg.qkv_width());
  const int64_t B = qkv.size(0), T = qkv.size(1), D = cfg.head_dim, half = inv_freq.numel();
  check_tensor(position_ids, "position_ids", {B, T}, DType::kI32);
  PTUNE_CHECK(half >= 1 && 2 * half <= D, "{}: inv_freq of {} frequencies for head dim {} (at most D/2)", op, half,
              D);
  check_tensor(inv_freq, "inv_freq", {half});
  const int64_t width = cfg.qkv_width(), rotated_heads = cfg.heads + cfg.kv_heads;  // q heads then k heads
  const int32_t* pos = position_ids.data<int32_t>();
  const float* inv = inv_freq.data<float>();
  float* x = qkv.data<float>();
#pragma omp parallel
  {
    std::vector<float> cs(static_cast<size_t>(2 * half));  // cos (half), then sin (half)
#pragma omp for schedule(static)
    for (int64_t bt = 0; bt < B * T; ++bt) {
      const float p = float(pos[bt]);
      for (int64_t i = 0; i < half; ++i) {
        const float a = p * inv[i];  // f32 product, as torch's matmul of f32 positions and frequencies
        cs[size_t(i)] = scale * std::cos(a);
        cs[size_t(half + i)] = sign * scale * std::sin(a);
      }
      float* row = x + bt * width;
      for (int64_t h = 0; h < rotated_heads; ++h) {
        float* v = row + h * D;
        for (int64_t i = 0; i < half; ++i) {
          const float c = cs[size_t(i)], s = cs[size_t(half + i)];
          const float x1 = v[i], x2 = v[i + half];
          v[i] = x1 * c - x2 * s;
          v[i + half] = x2 * c + x1 * s;
        }
      }
    }
  }
}

}  // namespace

void rope_forward(const Tensor& qkv, const Tensor& position_ids, const Tensor& inv_freq, const AttentionConfig& cfg,
                  float scale) {
  PTUNE_ROUTE(qkv, rope_forward, qkv, position_ids, inv_freq, cfg, scale);
  rotate(qkv, position_ids, inv_freq, cfg, 1.0f, scale, "rope_forward");
}

void rope_backward(const Tensor& dqkv, const Tensor& position_ids, const Tensor& inv_freq, const AttentionConfig& cfg,
                   float scale) {
  PTUNE_ROUTE(dqkv, rope_backward, dqkv, position_ids, inv_freq, cfg, scale);
  rotate(dqkv, position_ids, inv_freq, cfg, -1.0f, scale, "rope_backward");
}

}  // namespace ptune::ops
