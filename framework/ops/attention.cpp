// The parts of attention every backend shares: the checked call shape and
// what the forward saves for backward on each device.
#include "framework/ops/attention.h"

#include "framework/ops/dispatch.h"

namespace ptune::ops {

AttentionShape attention_shape(const Tensor& qkv, const Tensor& prefix_k, const AttentionConfig& cfg) {
  PTUNE_CHECK(cfg.heads > 0 && cfg.kv_heads > 0 && cfg.heads % cfg.kv_heads == 0 && cfg.head_dim > 0,
              "attention: {} heads, {} kv heads, head dim {}", cfg.heads, cfg.kv_heads, cfg.head_dim);
  PTUNE_CHECK(qkv.dim() == 3 && qkv.size(2) == cfg.qkv_width(), "attention: qkv {} for width {}", qkv.shape().str(),
              cfg.qkv_width());
  PTUNE_CHECK(cfg.window >= 0 && (cfg.window == 0 || cfg.mask == AttentionMask::kCausal),
              "attention: sliding window {} needs causal masking (and must not be negative)", cfg.window);
  AttentionShape s{};
  s.batch = qkv.size(0);
  s.seq = qkv.size(1);
  s.prefix = prefix_k.defined() ? prefix_k.size(0) : 0;
  s.keys = s.prefix + s.seq;
  s.group = cfg.heads / cfg.kv_heads;
  if (s.prefix > 0)
    PTUNE_CHECK(prefix_k.dim() == 2 && prefix_k.size(1) == cfg.kv_width() && prefix_k.dtype() == qkv.dtype(),
                "attention: prefix keys {} {} for kv width {} {}", prefix_k.shape().str(),
                dtype_name(prefix_k.dtype()), cfg.kv_width(), dtype_name(qkv.dtype()));
  return s;
}

Shape attention_saved_shape(Device device, int64_t batch, int64_t seq, int64_t prefix, const AttentionConfig& cfg) {
#ifdef PTUNE_CUDA
  if (device.is_cuda()) return {cuda::flash_state_numel(batch, cfg.heads, seq)};
#endif
  PTUNE_CHECK(device.is_cpu(), "attention: no kernel for tensors on {} in this build", device.str());
  return {batch, cfg.heads, seq, prefix + seq};
}

}  // namespace ptune::ops
