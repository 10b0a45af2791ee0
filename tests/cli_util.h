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
#include <sstream>
#include <string>
#include <vector>

#include "framework/io/json_file.h"

namespace ptune::testing {

struct CliRun {
  int status;
  std::string output;  // stdout + stderr
};

// Ranks busy-poll by default; yielding keeps more ranks than cores usable.
inline constexpr const char* kMpirun = "OMPI_MCA_mpi_yield_when_idle=1 mpirun --oversubscribe --allow-run-as-root -np";

// The ptune command line on `np` ranks under mpirun (0: a plain process, no MPI at all).
inline std::string ptune_cmd(int np, const std::string& args) {
  return np == 0 ? fmt::format("{} {}", PTUNE_BINARY, args) : fmt::format("{} {} {} {}", kMpirun, np, PTUNE_BINARY, args);
}

// Runs a shell command from the source tree (recipes name paths relative to
// it) with one OpenMP thread a process.
inline CliRun shell(const std::string& cmd) {
  const std::filesystem::path log = std::filesystem::temp_directory_path() / ("ptune_cli_" + std::to_string(::getpid()) + ".log");
  const int status =
      std::system(fmt::format("cd {} && OMP_NUM_THREADS=1 {} > {} 2>&1", PTUNE_SOURCE_DIR, cmd, log.string()).c_str());
  CliRun r{status, io::read_text_file(log.string())};
  std::filesystem::remove(log);
  return r;
}

inline CliRun ptune(const std::string& args) { return shell(ptune_cmd(0, args)); }

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

// Token-classification data on the quickstart's vocabulary (recipes/ner_*
// on a tiny model): the first `lines` sentences of its train or eval split,
// "not" tagged B-MISC, the reviewed thing B-ORG, every other word O.
inline void write_tagged_quickstart(const std::filesystem::path& out_path, const std::string& split, int lines) {
  std::ifstream in(std::filesystem::path(PTUNE_SOURCE_DIR) / ("recipes/data/quickstart/" + split + ".jsonl"));
  std::ofstream out(out_path);
  int n = 0;
  for (std::string line; n < lines && std::getline(in, line); ++n) {
    std::istringstream words(nlohmann::json::parse(line)["sentence"].get<std::string>());
    nlohmann::json tokens = nlohmann::json::array(), tags = nlohmann::json::array();
    for (std::string w; words >> w;) {
      tokens.push_back(w);
      tags.push_back(w == "not" ? "B-MISC" : w == "film" || w == "movie" || w == "ending" ? "B-ORG" : "O");
    }
    out << nlohmann::json{{"tokens", tokens}, {"ner_tags", tags}}.dump() << "\n";
  }
}

}  // namespace ptune::testing
