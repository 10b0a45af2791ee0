#include <gtest/gtest.h>

#include <filesystem>

#include "framework/io/checkpoint.h"
#include "framework/io/json_file.h"
#include "io_test_util.h"

namespace ptune::io {
namespace {

using testing::expect_error;

class Checkpoint : public testing::ScratchDir {
 protected:
  // Five tensors, 64 + 64 + 48 + 32 + 8 bytes, each filled with its index.
  std::vector<std::pair<std::string, Tensor>> model() const {
    std::vector<std::pair<std::string, Tensor>> out;
    const std::pair<const char*, Shape> spec[] = {{"embed.weight", {4, 4}},   {"layers.0.weight", {4, 4}},
                                                  {"layers.1.weight", {3, 4}}, {"layers.1.bias", {4}},
                                                  {"norm.weight", {2}}};
    int k = 0;
    for (const auto& [name, shape] : spec) {
      Tensor t = Tensor::empty(shape, DType::kF32);
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(k * 100 + i);
      out.emplace_back(name, k == 3 ? t.to(DType::kBF16) : t);
      ++k;
    }
    return out;
  }
};

TEST_F(Checkpoint, ShardedWriteThenReadThroughTheIndex) {
  const auto tensors = model();
  const std::string index = write_sharded(dir_.string(), tensors, 100);
  EXPECT_EQ(index, file("model.safetensors.index.json"));
  // Greedy in order with 100-byte shards: [embed], [layers.0], [layers.1.weight, layers.1.bias, norm].
  for (const char* shard : {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                            "model-00003-of-00003.safetensors"})
    EXPECT_TRUE(std::filesystem::exists(file(shard))) << shard;
  const nlohmann::json j = read_json_file(index);
  EXPECT_EQ(j["metadata"]["total_size"], 64 + 64 + 48 + 8 + 8);
  EXPECT_EQ(j["weight_map"]["norm.weight"], "model-00003-of-00003.safetensors");
  EXPECT_EQ(SafetensorsFile::open(file("model-00001-of-00003.safetensors")).metadata().at("format"), "pt");

  for (const std::string& open_path : {dir_.string(), index}) {
    SCOPED_TRACE(open_path);
    const CheckpointReader r = CheckpointReader::open(open_path);
    EXPECT_EQ(r.path(), index);
    EXPECT_EQ(r.names(), (std::vector<std::string>{"embed.weight", "layers.0.weight", "layers.1.bias",
                                                   "layers.1.weight", "norm.weight"}));
    EXPECT_EQ(r.total_parameters(), 16 + 16 + 12 + 4 + 2);
    EXPECT_EQ(r.dominant_dtype(), DType::kF32);
    EXPECT_EQ(r.file_of("layers.1.weight").path(), file("model-00003-of-00003.safetensors"));
    for (const auto& [name, t] : tensors) {
      SCOPED_TRACE(name);
      EXPECT_TRUE(r.contains(name));
      EXPECT_EQ(r.info(name).dtype, t.dtype());
      const Tensor got = r.load(name);
      const Tensor want = t.to(DType::kF32);
      ASSERT_EQ(got.shape(), want.shape());
      for (int64_t i = 0; i < got.numel(); ++i) EXPECT_EQ(got.data<float>()[i], want.data<float>()[i]);
    }
    EXPECT_EQ(r.view("layers.1.bias").dtype(), DType::kBF16);
    expect_error([&] { r.load("norm.wieght"); }, {"'norm.wieght' not found", index, "did you mean 'norm.weight'"});
  }
}

TEST_F(Checkpoint, OneShardIsASingleFile) {
  const std::string path = write_sharded(dir_.string(), model(), 1 << 20);
  EXPECT_EQ(path, file("model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(file("model.safetensors.index.json")));
  const CheckpointReader r = CheckpointReader::open(dir_.string());
  EXPECT_EQ(r.path(), path);
  EXPECT_EQ(r.names().size(), 5u);
  EXPECT_EQ(CheckpointReader::open(path).total_parameters(), 50);
}

TEST_F(Checkpoint, DominantDtypeCountsElements) {
  write_sharded(dir_.string(),
                {{"big", Tensor::zeros({100}, DType::kBF16)}, {"small", Tensor::zeros({10}, DType::kF32)}}, 1 << 20);
  EXPECT_EQ(CheckpointReader::open(dir_.string()).dominant_dtype(), DType::kBF16);
}

TEST_F(Checkpoint, DirectoryWithoutWeights) {
  testing::write_bytes(file("pytorch_model.bin"), "x");
  expect_error([&] { CheckpointReader::open(dir_.string()); },
               {dir_.string(), "model.safetensors", "PyTorch .bin"});
}

TEST_F(Checkpoint, IndexNamingAMissingShard) {
  write_sharded(dir_.string(), model(), 100);
  std::filesystem::remove(file("model-00002-of-00003.safetensors"));
  expect_error([&] { CheckpointReader::open(dir_.string()); },
               {"model-00002-of-00003.safetensors", "weight_map['layers.0.weight']", "model.safetensors.index.json",
                "does not exist"});
}

TEST_F(Checkpoint, IndexNamingATensorAbsentFromItsShard) {
  const std::string index = write_sharded(dir_.string(), model(), 100);
  nlohmann::json j = read_json_file(index);
  j["weight_map"]["ghost.weight"] = "model-00001-of-00003.safetensors";
  write_json_file(index, j);
  expect_error([&] { CheckpointReader::open(index); },
               {"'ghost.weight'", "model-00001-of-00003.safetensors", "model.safetensors.index.json",
                "does not contain"});
}

TEST_F(Checkpoint, IndexWithoutWeightMapOrBadJson) {
  const std::string index = file("model.safetensors.index.json");
  write_json_file(index, {{"metadata", {{"total_size", 0}}}});
  expect_error([&] { CheckpointReader::open(dir_.string()); }, {index, "weight_map"});
  testing::write_bytes(index, "{\n  \"weight_map\": {\n    \"a\": \"x\",\n  }\n}\n");
  expect_error([&] { CheckpointReader::open(dir_.string()); }, {index + ":4:", "invalid JSON"});
}

TEST_F(Checkpoint, CorruptShardNamesTheShard) {
  write_sharded(dir_.string(), model(), 100);
  testing::write_bytes(file("model-00003-of-00003.safetensors"), "abc");
  expect_error([&] { CheckpointReader::open(dir_.string()); }, {"model-00003-of-00003.safetensors", "shorter"});
}

}  // namespace
}  // namespace ptune::io
