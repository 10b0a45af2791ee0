#include "framework/train/run_log.h"

#include <fmt/format.h>
#include <unistd.h>

#include "framework/core/error.h"

namespace ptune::train {

RunLog::RunLog(const std::string& metrics_path, bool quiet)
    : quiet_(quiet), terminal_(isatty(fileno(stdout)) != 0), start_(std::chrono::steady_clock::now()) {
  if (!metrics_path.empty()) {
    metrics_ = std::fopen(metrics_path.c_str(), "a");
    PTUNE_CHECK(metrics_ != nullptr, "cannot open {} for writing", metrics_path);
  }
}

RunLog::~RunLog() {
  end_bar();
  if (metrics_) std::fclose(metrics_);
}

void RunLog::write(const nlohmann::json& record) {
  if (!metrics_) return;
  const std::string line = record.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), metrics_);
  std::fflush(metrics_);
}

void RunLog::end_bar() {
  if (bar_open_) std::fputc('\n', stdout);
  bar_open_ = false;
}

void RunLog::train_step(int64_t step, int64_t total_steps, double loss, double lr, double grad_norm,
                        double tokens_per_s) {
  write({{"step", step}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm}, {"tokens_per_s", tokens_per_s}});
  if (quiet_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double eta = step > 0 ? elapsed / double(step) * double(total_steps - step) : 0.0;
  const std::string stats = fmt::format("step {}/{}  loss {:.4f}  lr {:.2e}  {:.0f} tok/s  eta {:.0f}s", step,
                                        total_steps, loss, lr, tokens_per_s, eta);
  if (terminal_) {
    constexpr int kWidth = 24;
    const int filled = total_steps > 0 ? int(kWidth * step / total_steps) : 0;
    fmt::print("\r[{}{}] {}", std::string(size_t(filled), '#'), std::string(size_t(kWidth - filled), '.'), stats);
    std::fflush(stdout);
    bar_open_ = true;
  } else {
    fmt::print("{}\n", stats);
  }
}

void RunLog::eval(int64_t step, const nlohmann::json& metrics) {
  nlohmann::json record = metrics;
  record["step"] = step;
  record["split"] = "eval";
  write(record);
  if (quiet_) return;
  end_bar();
  std::string line = fmt::format("eval step {}:", step);
  std::string details;  // nested scores (per entity type): one indented line each, after the totals
  for (const auto& [key, value] : metrics.items()) {
    if (value.is_object()) {
      for (const auto& [name, scores] : value.items()) {
        details += fmt::format("\n    {} {}:", key, name);
        for (const auto& [k, v] : scores.items())
          details += v.is_number_float() ? fmt::format("  {} {:.4f}", k, v.get<double>()) : fmt::format("  {} {}", k, v.dump());
      }
      continue;
    }
    line += value.is_number_float() ? fmt::format("  {} {:.4f}", key, value.get<double>()) : fmt::format("  {} {}", key, value.dump());
  }
  fmt::print("{}{}\n", line, details);
}

void RunLog::message(const std::string& text) {
  write({{"message", text}});
  if (quiet_) return;
  end_bar();
  fmt::print("{}\n", text);
}

}  // namespace ptune::train
