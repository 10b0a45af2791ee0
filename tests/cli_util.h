// Running the ptune binary from tests: `ptune(args)` runs it from the
// source tree (recipes name paths relative to it) and returns its exit
// status and output; a run directory's metrics.jsonl reads back as JSON.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/io/json_file.h"

namespace ptune::testing {

struct CliRun {
  int status;
  std::string output;  // stdout + stderr
};

// Runs ptune from the source tree (recipes name paths relative to it).
inline CliRun ptune(const std::string& args) {
  const std::filesystem::path log = std::filesystem::temp_directory_path() / ("ptune_cli_" + std::to_string(::getpid()) + ".log");
  const std::string cmd =
      fmt::format("cd {} && OMP_NUM_THREADS=1 {} {} > {} 2>&1", PTUNE_SOURCE_DIR, PTUNE_BINARY, args, log.string());
  const int status = std::system(cmd.c_str());
  CliRun r{status, io::read_text_file(log.string())};
  std::filesystem::remove(log);
  return r;
}

inline std::vector<nlohmann::json> metrics(const std::filesystem::path& run) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

inline std::vector<double> step_losses(const std::filesystem::path& run) {
  std::vector<double> losses;
  for (const auto& m : metrics(run))
    if (m.contains("loss") && !m.contains("split")) losses.push_back(m["loss"]);
  return losses;
}

}  // namespace ptune::testing
