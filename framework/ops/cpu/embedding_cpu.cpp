#include <algorithm>
#include <vector>

#include "framework/ops/dispatch.h"
#include "framework/ops/embedding.h"

namespace ptune::ops {

namespace {
template <bool kAdd>
void lookup(const Tensor& out, const Tensor& ids, const Tensor& table) {
  PTUNE_REQUIRE_CPU(table, "embedding_forward");
  const int64_t n = ids.numel(), c = table.size(1), v = table.size(0);
  PTUNE_CHECK(out.numel() == n * c, "embedding: out {} for {} ids of width {}", out.shape().str(), n, c);
  const int32_t* pid = ids.data<int32_t>();
  const float* pt = table.data<float>();
  float* po = out.data<float>();
  for (int64_t i = 0; i < n; ++i)
    PTUNE_CHECK(pid[i] >= 0 && pid[i] < v, "embedding: id {} at position {} is outside the table of {} rows",
                pid[i], i, v);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* row = pt + int64_t(pid[i]) * c;
    float* o = po + i * c;
    for (int64_t j = 0; j < c; ++j) {
      if constexpr (kAdd) o[j] += row[j];
      else o[j] = row[j];
    }
  }
}
}  // namespace

void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table) {
  PTUNE_ROUTE(table, embedding_forward, out, ids, table);
  lookup<false>(out, ids, table);
}
void embedding_add(const Tensor& out, const Tensor& ids, const Tensor& table) {
  PTUNE_ROUTE(table, embedding_add, out, ids, table);
  lookup<true>(out, ids, table);
}

void embedding_backward(const Tensor& dtable, const Tensor& dout, const Tensor& ids) {
  PTUNE_ROUTE(dtable, embedding_backward, dtable, dout, ids);
  const int64_t n = ids.numel(), c = dtable.size(1);
  const int32_t* pid = ids.data<int32_t>();
  const float* pd = dout.data<float>();
  float* pt = dtable.data<float>();
  // Serial over rows: repeated ids would race; columns are parallel.
  for (int64_t i = 0; i < n; ++i) {
    float* row = pt + int64_t(pid[i]) * c;
    const float* d = pd + i * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) row[j] += d[j];
  }
}

void scatter_add_rows(const Tensor& dst, const Tensor& src, const Tensor& rows) {
  PTUNE_ROUTE(dst, scatter_add_rows, dst, src, rows);
  const int64_t n = rows.numel(), r = dst.size(0), c = dst.numel() / std::max<int64_t>(r, 1);
  PTUNE_CHECK(src.numel() == n * c, "scatter_add_rows: src {} for {} rows of width {}", src.shape().str(), n, c);
  const int32_t* pr = rows.data<int32_t>();
  std::vector<bool> seen(size_t(r), false);
  for (int64_t i = 0; i < n; ++i) {
    PTUNE_CHECK(pr[i] >= 0 && pr[i] < r && !seen[size_t(pr[i])],
                "scatter_add_rows: row {} at position {} is outside [0, {}) or repeated", pr[i], i, r);
    seen[size_t(pr[i])] = true;
  }
  const float* ps = src.data<float>();
  float* pd = dst.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float* d = pd + int64_t(pr[i]) * c;
    const float* s = ps + i * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) d[j] += s[j];
  }
}

void prompt_embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table, const Tensor& prompt,
                              float table_scale) {
  PTUNE_ROUTE(table, prompt_embedding_forward, out, ids, table, prompt, table_scale);
  const int64_t n = ids.numel(), c = table.size(1), v = table.size(0), p = prompt.size(0);
  PTUNE_CHECK(out.numel() == n * c && prompt.size(1) == c, "prompt_embedding_forward: out {} prompt {} width {}",
              out.shape().str(), prompt.shape().str(), c);
  const int32_t* pid = ids.data<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    PTUNE_CHECK(pid[i] < v && pid[i] >= -p, "prompt_embedding: id {} at position {} is outside [-{}, {})", pid[i], i,
                p, v);
  const float* pt = table.data<float>();
  const float* pp = prompt.data<float>();
  float* po = out.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float* o = po + i * c;
    if (pid[i] < 0) {
      const float* row = pp + int64_t(-pid[i] - 1) * c;
      std::copy(row, row + c, o);
    } else {
      const float* row = pt + int64_t(pid[i]) * c;
      for (int64_t j = 0; j < c; ++j) o[j] = row[j] * table_scale;
    }
  }
}

void prompt_embedding_backward(const Tensor& dprompt, const Tensor& dout, const Tensor& ids) {
  PTUNE_ROUTE(dprompt, prompt_embedding_backward, dprompt, dout, ids);
  const int64_t n = ids.numel(), c = dprompt.size(1);
  const int32_t* pid = ids.data<int32_t>();
  const float* pd = dout.data<float>();
  float* pp = dprompt.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    if (pid[i] >= 0) continue;
    float* row = pp + int64_t(-pid[i] - 1) * c;
    const float* d = pd + i * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) row[j] += d[j];
  }
}

}  // namespace ptune::ops
