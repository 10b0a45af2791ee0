// The weights of a Hugging Face model: `model.safetensors`, or shards named
// by `model.safetensors.index.json` ({"metadata": {"total_size": N},
// "weight_map": {tensor: shard file}}), behind one access API.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/io/safetensors.h"

namespace ptune::io {

class CheckpointReader {
 public:
  // `path` is a model directory (index preferred over model.safetensors, as
  // transformers does), an `*.index.json`, or one `.safetensors` file.
  // Every shard is opened and validated; every tensor of the index must be
  // in its shard. Errors name the index file and the key.
  static CheckpointReader open(const std::string& path);

  const std::string& path() const { return path_; }  // the index or the single file
  std::vector<std::string> names() const;             // sorted
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  Tensor view(const std::string& name) const;
  Tensor load(const std::string& name, DType to = DType::kF32) const;
  // The file that holds `name`.
  const SafetensorsFile& file_of(const std::string& name) const;

  int64_t total_parameters() const;
  // The dtype holding the most elements (among dtypes ptune supports):
  // what the model was saved in, e.g. bf16 for most recent LLMs.
  DType dominant_dtype() const;

 private:
  std::string path_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;  // tensor -> index into files_
};

// Writes `tensors` as transformers' save_pretrained does: greedily, in the
// given order, into shards of at most `max_shard_bytes` (a tensor larger
// than that gets a shard of its own) named model-0000i-of-0000n.safetensors,
// plus model.safetensors.index.json. One shard is written as
// model.safetensors with no index. Shards carry metadata {"format": "pt"},
// which transformers requires. Returns the path to open (index or file).
std::string write_sharded(const std::string& dir, const std::vector<std::pair<std::string, Tensor>>& tensors,
                          uint64_t max_shard_bytes);

}  // namespace ptune::io
