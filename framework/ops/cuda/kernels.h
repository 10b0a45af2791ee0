// CUDA implementations of the ops, declared on plain Tensors (no CUDA
// headers here). The public ops in ops/*.h route to these when their
// tensors live on a GPU (ops/dispatch.h), on the device's default stream;
// callers that manage streams (training step, CUDA graphs, the NCCL
// overlap) call these launchers with an explicit Stream.
//
// Types: activations and gradients are f32 or bf16 (bf16 storage, every
// reduction and every GEMM accumulates in f32); parameters (norm weights,
// biases, embedding tables, linear weights) are f32 or bf16 independently
// of the activations; saved statistics (mean, rstd, lse, losses) are f32.
// Forward writes, backward accumulates, exactly as the CPU reference.
#pragma once

#include <cstdint>

#include "framework/core/stream.h"
#include "framework/core/tensor.h"
#include "framework/ops/activation.h"
#include "framework/ops/attention.h"
#include "framework/ops/grad_mode.h"
#include "framework/ops/layernorm.h"
#include "framework/ops/optimizer.h"

namespace ptune::ops::cuda {

// --- elementwise.h
void add_forward(const Tensor& y, const Tensor& a, const Tensor& b, const Stream& stream);
void accumulate(const Tensor& dst, const Tensor& src, const Stream& stream);
void scale_(const Tensor& t, float s, const Stream& stream);
void copy_columns(const Tensor& dst, int64_t dst_col, const Tensor& src, int64_t src_col, int64_t width,
                  bool accumulate, const Stream& stream);
void dropout_forward(const Tensor& y, const Tensor& x, float p, uint64_t seed, uint64_t offset, const Stream& stream);
void dropout_backward(const Tensor& dx, const Tensor& dy, float p, uint64_t seed, uint64_t offset,
                      const Stream& stream);

// --- activation.h
void activation_forward(Activation f, const Tensor& y, const Tensor& x, const Stream& stream);
void activation_backward(Activation f, const Tensor& dx, const Tensor& dy, const Tensor& x, const Stream& stream);

// --- layernorm.h
void norm_forward(NormKind kind, const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                  const Tensor& w, const Tensor& b, float eps, const Stream& stream);
void norm_backward(NormKind kind, const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                   const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd, const Stream& stream);
// Fused pre-norm block entry: h = dropout(a) + residual (written to `sum`,
// the new residual stream), then y = norm(h). One pass over memory instead
// of three. p = 0 skips the dropout; a may be undefined (h = residual).
void residual_norm_forward(NormKind kind, const Tensor& y, const Tensor& sum, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& a, const Tensor& residual, const Tensor& w,
                                   const Tensor& b, float eps, float p, uint64_t seed, uint64_t offset,
                                   const Stream& stream);

void head_rms_norm_forward(const Tensor& qkv, int64_t col, const Tensor& saved, const Tensor& rstd, const Tensor& w,
                           float eps, const Stream& stream);
void head_rms_norm_backward(const Tensor& dqkv, int64_t col, const Tensor& saved, const Tensor& rstd,
                            const Tensor& w, const Stream& stream);

// --- embedding.h
void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table, const Stream& stream);
void embedding_add(const Tensor& out, const Tensor& ids, const Tensor& table, const Stream& stream);
void embedding_backward(const Tensor& dtable, const Tensor& dout, const Tensor& ids, const Stream& stream);
void scatter_add_rows(const Tensor& dst, const Tensor& src, const Tensor& rows, const Stream& stream);
void prompt_embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table, const Tensor& prompt,
                              float table_scale, const Stream& stream);
void prompt_embedding_backward(const Tensor& dprompt, const Tensor& dout, const Tensor& ids, const Stream& stream);

// --- cross_entropy.h (the ignored-target count is copied back: one sync)
int64_t cross_entropy_forward(const Tensor& losses, const Tensor& lse, const Tensor& logits, const Tensor& targets,
                              const Stream& stream);
void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse, const Tensor& targets,
                            float scale, const Stream& stream);

// --- linear.h: cuBLASLt, f32 compute (no TF32, so the f32 mode matches the
// CPU to rounding); bf16 inputs use bf16 tensor cores with f32 accumulation.
enum class Epilogue : uint8_t { kNone, kBias, kGeluTanh, kBiasGeluTanh };
void linear_forward(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Stream& stream);
// y = epilogue(x·wᵀ + bias) in one cuBLASLt call (GPT-2 MLP up-projection).
void linear_forward_epilogue(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, Epilogue epilogue,
                             const Stream& stream);
// GradMode::kWrite runs the GEMM with beta 0 (dx is not read).
void linear_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w, GradMode mode, const Stream& stream);
// The MLP's activation fused into its GEMMs (ops/linear.h). With kGeluTanh
// in bf16, forward is one GELU_AUX(_BIAS) GEMM (act in D, pre in the aux
// buffer) and backward one DGELU GEMM (dpre = gelu'(pre) ⊙ (dy · w),
// written, not accumulated); f32 (which must match the CPU to rounding),
// other activations, or shapes cuBLASLt turns down (aux ld not a multiple
// of 8, an aux pointer under 16-byte alignment) run the unfused GEMM +
// activation kernels.
void linear_activation_forward(Activation f, const Tensor& act, const Tensor& pre, const Tensor& x, const Tensor& w,
                               const Tensor& bias, const Stream& stream);
void linear_activation_backward_input(Activation f, const Tensor& dpre, const Tensor& dact, const Tensor& dy,
                                      const Tensor& w, const Tensor& pre, const Stream& stream);
void linear_backward_params(const Tensor& dw, const Tensor& dbias, const Tensor& dy, const Tensor& x,
                            const Stream& stream);

// --- attention.h: flash attention (online softmax; no (T, P+T) matrix).
// Instead of probs, the forward saves a flash state in the probs buffer:
// the row logsumexp (B, H, T) f32 followed by the key mask (B, T) as i32,
// flash_state_numel() floats in all; the CPU-shaped (B, H, T, P+T) buffer
// is large enough whenever H·(P+T) ≥ H + 1. dscores is unused (may be
// undefined); backward scratch comes from the caching allocator.
int64_t flash_state_numel(int64_t batch, int64_t heads, int64_t seq);
void attention_forward(const Tensor& out, const Tensor& probs, const Tensor& qkv, const Tensor& prefix_k,
                       const Tensor& prefix_v, const Tensor& key_mask, const AttentionConfig& cfg,
                       const Stream& stream);
// out: the forward's output (B, T, H·D), same dtype as qkv; backward
// takes δ = rowsum(dout ∘ out) from it instead of sweeping the keys twice.
void attention_backward(const Tensor& dqkv, const Tensor& dprefix_k, const Tensor& dprefix_v, const Tensor& dscores,
                        const Tensor& dout, const Tensor& out, const Tensor& qkv, const Tensor& probs,
                        const Tensor& prefix_k, const Tensor& prefix_v, const AttentionConfig& cfg, GradMode mode,
                        const Stream& stream);

// --- rope.h: in place on the fused qkv (B, T, H·D + 2·KVH·D); position_ids
// (B, T) i32 and inv_freq (R/2 ≤ D/2) f32 on the qkv's device; cos and sin
// times `scale`. Value and pass-through columns untouched.
void rope_forward(const Tensor& qkv, const Tensor& position_ids, const Tensor& inv_freq, const AttentionConfig& cfg,
                  float scale, const Stream& stream);
void rope_backward(const Tensor& dqkv, const Tensor& position_ids, const Tensor& inv_freq,
                   const AttentionConfig& cfg, float scale, const Stream& stream);

// --- swiglu.h: x (N, 2I) = [gate | up], y (N, I); backward accumulates
// into dx, or writes it whole with GradMode::kWrite.
void gated_forward(Activation f, const Tensor& y, const Tensor& x, const Stream& stream);
void gated_backward(Activation f, const Tensor& dx, const Tensor& dy, const Tensor& x, GradMode mode,
                    const Stream& stream);

// --- recurrent.h: the LSTM cell's pointwise step, f32 (the prompt encoder's
// master copies); rec, c_prev and dh_rec may be undefined (zeros). Backward
// writes dgates and carries dc in place.
void lstm_cell_forward(const Tensor& acts, const Tensor& c, const Tensor& h, const Tensor& gx, const Tensor& rec,
                       const Tensor& b_hh, const Tensor& c_prev, const Stream& stream);
void lstm_cell_backward(const Tensor& dgates, const Tensor& dc, const Tensor& dh_out, const Tensor& dh_rec,
                        const Tensor& acts, const Tensor& c, const Tensor& c_prev, const Stream& stream);

// --- train/optimizer (ops/optimizer.h): the same f32 math as the CPU,
// operation for operation, so GPU and CPU steps agree to the bit. The two
// reductions copy their result back: one synchronisation of `stream`.
void adamw_update(const Tensor& params, const Tensor& grads, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const Tensor& decay_mask, const AdamWScalars& scalars, const Stream& stream);
double sum_squares(const Tensor& x, const Stream& stream);
bool all_finite(const Tensor& x, const Stream& stream);

}  // namespace ptune::ops::cuda
