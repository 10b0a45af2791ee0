// Shared by the tokenizer tests: the record compared with the fixtures, its
// canonical string and hash (mirrors gen_tokenizer_fixtures.py), and the
// walk over the dataset lines that datasets.json hashes.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "framework/core/error.h"
#include "framework/text/tokenizer.h"

namespace ptune::text {

struct Record {
  std::vector<uint32_t> ids, type_ids, attention_mask, special_tokens_mask;
  std::vector<std::pair<std::size_t, std::size_t>> offsets;
  std::string decoded, decoded_raw;
};

inline std::filesystem::path fixture_dir(const std::string& name) {
  return std::filesystem::path(PTUNE_FIXTURES) / "tokenizers" / name;
}

inline Record to_record(const Tokenizer& tok, const Encoding& e) {
  Record r{e.ids, e.type_ids, e.attention_mask, e.special_tokens_mask, {}, tok.decode(e.ids, true),
           tok.decode(e.ids, false)};
  for (const Offsets& o : e.offsets) r.offsets.emplace_back(o.begin, o.end);
  return r;
}

inline Record record_from_json(const nlohmann::json& j) {
  Record r;
  r.ids = j.at("ids").get<std::vector<uint32_t>>();
  r.type_ids = j.at("type_ids").get<std::vector<uint32_t>>();
  r.attention_mask = j.at("attention_mask").get<std::vector<uint32_t>>();
  r.special_tokens_mask = j.at("special_tokens_mask").get<std::vector<uint32_t>>();
  for (const auto& o : j.at("offsets")) r.offsets.emplace_back(o.at(0).get<std::size_t>(), o.at(1).get<std::size_t>());
  r.decoded = j.at("decoded").get<std::string>();
  r.decoded_raw = j.at("decoded_raw").get<std::string>();
  return r;
}

inline std::string canonical(const Record& r) {
  auto ints = [](const std::vector<uint32_t>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i) s += ',';
      s += std::to_string(v[i]);
    }
    return s;
  };
  std::string offs;
  for (std::size_t i = 0; i < r.offsets.size(); ++i) {
    if (i) offs += ',';
    offs += std::to_string(r.offsets[i].first) + ":" + std::to_string(r.offsets[i].second);
  }
  return ints(r.ids) + "|" + ints(r.type_ids) + "|" + ints(r.attention_mask) + "|" + ints(r.special_tokens_mask) +
         "|" + offs + "|" + r.decoded + "|" + r.decoded_raw;
}

inline std::string fnv1a40(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char b : s) {
    h ^= b;
    h *= 0x100000001B3ull;
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "%010llx", static_cast<unsigned long long>(h >> 24));
  return buf;
}

struct DatasetLine {
  std::string source;
  std::size_t index;
  std::string text;
  std::optional<std::string> pair;
  std::string expected_hash;
};

// Calls f on every dataset line that datasets.json holds a hash for, read
// from PTUNE_DATASETS in the generator's order.
template <class F>
void for_each_dataset_line(const std::filesystem::path& datasets_json, F f) {
  std::ifstream in(datasets_json);
  PTUNE_CHECK(in.good(), "cannot open {}", datasets_json.string());
  const nlohmann::json spec = nlohmann::json::parse(in);
  for (const auto& src : spec.at("sources")) {
    const std::string file = src.at("file").get<std::string>();
    const std::string field = src.at("field").get<std::string>();
    const std::optional<std::string> pair_field =
        src.at("pair_field").is_null() ? std::nullopt : std::optional(src.at("pair_field").get<std::string>());
    const std::string hashes = src.at("hashes").get<std::string>();
    const std::size_t count = src.at("count").get<std::size_t>();
    std::ifstream data(std::filesystem::path(PTUNE_DATASETS) / file);
    PTUNE_CHECK(data.good(), "cannot open dataset {}", file);
    std::string line;
    std::size_t i = 0;
    while (std::getline(data, line)) {
      if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
      const nlohmann::json row = nlohmann::json::parse(line);
      PTUNE_CHECK(i < count, "{}: more lines than the fixture has hashes", file);
      DatasetLine l{file + ":" + field + (pair_field ? "+" + *pair_field : ""), i, row.at(field).get<std::string>(),
                    pair_field ? std::optional(row.at(*pair_field).get<std::string>()) : std::nullopt,
                    hashes.substr(10 * i, 10)};
      f(l);
      ++i;
    }
    PTUNE_CHECK(i == count, "{}: {} lines, the fixture has {} hashes", file, i, count);
  }
}

}  // namespace ptune::text
