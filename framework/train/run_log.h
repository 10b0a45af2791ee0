// What a run reports: a progress bar (step, loss, lr, tokens/s, ETA) on a
// terminal, one plain line per log step otherwise, and every record as a
// JSON line in <output_dir>/metrics.jsonl.
#pragma once

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace ptune::train {

class RunLog {
 public:
  // metrics_path empty: no metrics file. quiet: print nothing (other ranks).
  RunLog(const std::string& metrics_path, bool quiet);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  void train_step(int64_t step, int64_t total_steps, double loss, double lr, double grad_norm, double tokens_per_s);
  void eval(int64_t step, const nlohmann::json& metrics);
  void message(const std::string& text);

 private:
  void write(const nlohmann::json& record);
  void end_bar();

  std::FILE* metrics_ = nullptr;
  bool quiet_, terminal_, bar_open_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace ptune::train
