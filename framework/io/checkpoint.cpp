#include "framework/io/checkpoint.h"

#include <filesystem>
#include <set>

#include "framework/core/error.h"
#include "framework/io/json_file.h"

namespace ptune::io {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

CheckpointReader CheckpointReader::open(const std::string& path) {
  CheckpointReader r;
  std::string file = path;
  if (fs::is_directory(path)) {
    if (fs::exists(fs::path(path) / kIndexFile)) {
      file = (fs::path(path) / kIndexFile).string();
    } else if (fs::exists(fs::path(path) / kSingleFile)) {
      file = (fs::path(path) / kSingleFile).string();
    } else {
      const bool has_bin =
          fs::exists(fs::path(path) / "pytorch_model.bin") || fs::exists(fs::path(path) / "pytorch_model.bin.index.json");
      PTUNE_FAIL("no weights in {}: expected {} or {}{}", path, kSingleFile, kIndexFile,
                 has_bin ? " (found only PyTorch .bin weights; convert them to safetensors)" : "");
    }
  }
  r.path_ = file;

  if (!ends_with(file, ".json")) {
    r.files_.push_back(SafetensorsFile::open(file));
    for (const std::string& name : r.files_[0].names()) r.where_[name] = 0;
    return r;
  }

  const nlohmann::json index = read_json_file(file);
  PTUNE_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
              "{} has no 'weight_map' object", file);
  const fs::path dir = fs::path(file).parent_path();
  std::map<std::string, size_t> shard_ids;  // shard file name -> index into files_
  for (const auto& [name, shard] : index["weight_map"].items()) {
    PTUNE_CHECK(shard.is_string(), "weight_map['{}'] in {} is not a file name", name, file);
    const std::string shard_name = shard.get<std::string>();
    auto it = shard_ids.find(shard_name);
    if (it == shard_ids.end()) {
      const fs::path shard_path = dir / shard_name;
      PTUNE_CHECK(fs::is_regular_file(shard_path), "shard {} named by weight_map['{}'] in {} does not exist",
                  shard_path.string(), name, file);
      r.files_.push_back(SafetensorsFile::open(shard_path.string()));
      it = shard_ids.emplace(shard_name, r.files_.size() - 1).first;
    }
    const SafetensorsFile& f = r.files_[it->second];
    PTUNE_CHECK(f.contains(name), "tensor '{}' is mapped to {} by {}, but that shard does not contain it", name,
                f.path(), file);
    r.where_[name] = it->second;
  }
  return r;
}

std::vector<std::string> CheckpointReader::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [name, i] : where_) out.push_back(name);
  return out;
}

const SafetensorsFile& CheckpointReader::file_of(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end())
    PTUNE_FAIL("tensor '{}' not found in {}{}", name, path_, suggest_nearest(name, names()));
  return files_[it->second];
}

const TensorInfo& CheckpointReader::info(const std::string& name) const { return file_of(name).info(name); }
Tensor CheckpointReader::view(const std::string& name) const { return file_of(name).view(name); }
Tensor CheckpointReader::load(const std::string& name, DType to) const { return file_of(name).load(name, to); }

int64_t CheckpointReader::total_parameters() const {
  int64_t n = 0;
  for (const auto& [name, i] : where_) n += files_[i].info(name).shape.numel();
  return n;
}

DType CheckpointReader::dominant_dtype() const {
  std::map<DType, int64_t> count;
  for (const auto& [name, i] : where_) {
    const TensorInfo& t = files_[i].info(name);
    if (t.dtype) count[*t.dtype] += t.shape.numel();
  }
  PTUNE_CHECK(!count.empty(), "{} holds no tensor in a dtype ptune supports", path_);
  auto best = count.begin();
  for (auto it = count.begin(); it != count.end(); ++it)
    if (it->second > best->second) best = it;
  return best->first;
}

std::string write_sharded(const std::string& dir, const std::vector<std::pair<std::string, Tensor>>& tensors,
                          uint64_t max_shard_bytes) {
  PTUNE_CHECK(max_shard_bytes > 0, "max_shard_bytes must be positive (writing {})", dir);
  fs::create_directories(dir);
  // Greedy in the given order, as transformers' split_torch_state_dict_into_shards.
  std::vector<std::vector<std::pair<std::string, Tensor>>> shards(1);
  uint64_t current = 0;
  uint64_t total = 0;
  std::set<std::string> seen;
  for (const auto& nt : tensors) {
    PTUNE_CHECK(seen.insert(nt.first).second, "tensor '{}' given twice for {}", nt.first, dir);
    const uint64_t bytes = nt.second.nbytes();
    if (!shards.back().empty() && current + bytes > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(nt);
    current += bytes;
    total += bytes;
  }
  const std::map<std::string, std::string> meta = {{"format", "pt"}};
  if (shards.size() == 1) {
    const std::string path = (fs::path(dir) / kSingleFile).string();
    write_safetensors(path, shards[0], meta);
    return path;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string name = fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    write_safetensors((fs::path(dir) / name).string(), shards[i], meta);
    for (const auto& [tensor, t] : shards[i]) weight_map[tensor] = name;
  }
  // Shards first, index last: a reader never sees an index whose shards
  // are not yet all written.
  const std::string index_path = (fs::path(dir) / kIndexFile).string();
  write_json_file(index_path, {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
  return index_path;
}

}  // namespace ptune::io
