// Encode throughput of ptune's tokenizers, single thread, on the SST-2 +
// RTE + TREC text (one encode() per line, as a data loader does).
//
//   bench_tokenizer <tokenizer.json> <datasets dir> [repeats]
//
// Prints lines/s, tokens/s and MB/s; bench_tokenizer.sh runs it beside the
// Python `tokenizers` package on the same lines.
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/text/tokenizer.h"

namespace {

std::vector<std::string> load_lines(const std::string& dir) {
  const std::pair<const char*, const char*> sources[] = {
      {"sst2/train.jsonl", "sentence"}, {"sst2/dev.jsonl", "sentence"},  {"rte/train.jsonl", "premise"},
      {"rte/train.jsonl", "hypothesis"}, {"rte/val.jsonl", "premise"},   {"rte/val.jsonl", "hypothesis"},
      {"trec/train.jsonl", "question"}};
  std::vector<std::string> lines;
  for (const auto& [file, field] : sources) {
    std::ifstream in(dir + "/" + file);
    if (!in) throw std::runtime_error("cannot open " + dir + "/" + file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
      lines.push_back(nlohmann::json::parse(line).at(field).get<std::string>());
    }
  }
  return lines;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <tokenizer.json> <datasets dir> [repeats]\n", argv[0]);
    return 2;
  }
  try {
    auto tok = ptune::text::Tokenizer::from_file(argv[1]);
    tok.set_truncation(std::nullopt);
    tok.set_padding(std::nullopt);
    const int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
    const std::vector<std::string> lines = load_lines(argv[2]);
    std::size_t bytes = 0;
    for (const auto& l : lines) bytes += l.size();
    std::size_t tokens = 0;
    for (const auto& l : lines) tokens += tok.encode(l).size();  // warm-up (and the BPE cache, as in HF)
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      std::size_t n = 0;
      for (const auto& l : lines) n += tok.encode(l).size();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, s);
      if (n != tokens) throw std::runtime_error("non-deterministic token count");
    }
    std::printf("ptune    %-40s lines %zu  tokens %zu  best of %d: %.3f s  %.0f lines/s  %.2f Mtok/s  %.2f MB/s\n",
                argv[1], lines.size(), tokens, repeats, best, lines.size() / best, tokens / best / 1e6,
                bytes / best / 1e6);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
