#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "framework/io/json_file.h"
#include "framework/io/safetensors.h"
#include "io_test_util.h"

namespace ptune::io {
namespace {

using testing::expect_error;
using testing::safetensors_bytes;
using testing::write_bytes;

class Safetensors : public testing::ScratchDir {};

// Deterministic, non-trivial bytes for any dtype: every byte differs.
Tensor patterned(const Shape& shape, DType dtype, int seed) {
  Tensor t = Tensor::empty(shape, dtype);
  auto* p = static_cast<unsigned char*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>((i * 131 + size_t(seed) * 17 + 7) & 0xff);
  return t;
}

TEST_F(Safetensors, RoundTripEveryDtype) {
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"a.f16", patterned({3, 5}, DType::kF16, 1)},  // 30 bytes: misaligns whatever follows in given order
      {"b.f32", patterned({2, 3, 4}, DType::kF32, 2)},
      {"c.bf16", patterned({7}, DType::kBF16, 3)},
      {"d.i32", patterned({4, 1}, DType::kI32, 4)},
      {"e.i64", patterned({3}, DType::kI64, 5)},
      {"f.scalar", patterned({}, DType::kF32, 6)},
      {"g.empty", Tensor::empty({0, 3}, DType::kF16)},
  };
  const std::string path = file("all.safetensors");
  write_safetensors(path, tensors, {{"format", "pt"}});
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"a.f16", "b.f32", "c.bf16", "d.i32", "e.i64", "f.scalar", "g.empty"}));
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    const TensorInfo& info = f.info(name);
    EXPECT_EQ(info.dtype, t.dtype());
    EXPECT_EQ(info.shape, t.shape());
    EXPECT_EQ(info.nbytes(), t.nbytes());
    EXPECT_EQ(info.begin % dtype_size(t.dtype()), 0u) << "tensor not aligned to its dtype";
    const Tensor v = f.view(name);
    EXPECT_EQ(v.dtype(), t.dtype());
    EXPECT_EQ(v.shape(), t.shape());
    EXPECT_EQ(std::memcmp(v.raw(), t.raw(), t.nbytes()), 0);
  }
  // The data section starts 8-aligned (header padded with spaces).
  const std::string bytes = read_text_file(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ((8 + header_len) % 8, 0u);
}

TEST_F(Safetensors, LoadConvertsHalfPrecisionToF32) {
  Tensor src = Tensor::empty({64}, DType::kF32);
  for (int i = 0; i < 64; ++i) src.data<float>()[i] = std::sin(float(i)) * float(1 << (i % 20)) * 1e-3f;
  src.data<float>()[0] = -0.0f;
  src.data<float>()[1] = 70000.0f;  // overflows f16 to inf
  src.data<float>()[2] = 3e-8f;     // an f16 subnormal
  const Tensor h = src.to(DType::kF16), b = src.to(DType::kBF16);
  const std::string path = file("half.safetensors");
  write_safetensors(path, {{"h", h}, {"b", b}, {"f", src}});
  const SafetensorsFile f = SafetensorsFile::open(path);

  const Tensor hf = f.load("h"), bf = f.load("b", DType::kF32);
  ASSERT_EQ(hf.dtype(), DType::kF32);
  ASSERT_EQ(bf.dtype(), DType::kF32);
  const auto* hb = static_cast<const uint16_t*>(h.raw());
  const auto* bb = static_cast<const uint16_t*>(b.raw());
  for (int i = 0; i < 64; ++i) {
    const float he = f16_to_f32(hb[i]), be = bf16_to_f32(bb[i]);
    EXPECT_EQ(std::memcmp(&hf.data<float>()[i], &he, 4), 0) << i;
    EXPECT_EQ(std::memcmp(&bf.data<float>()[i], &be, 4), 0) << i;
  }
  EXPECT_TRUE(std::isinf(hf.data<float>()[1]));
  EXPECT_TRUE(std::signbit(hf.data<float>()[0]));
  // f32 -> f16 on load, and an owning copy (not the mapped bytes).
  const Tensor down = f.load("f", DType::kF16);
  EXPECT_EQ(std::memcmp(down.raw(), h.raw(), h.nbytes()), 0);
  EXPECT_NE(f.load("f").raw(), f.view("f").raw());
}

TEST_F(Safetensors, LoadConvertsIntegers) {
  Tensor ids = Tensor::empty({4}, DType::kI64);
  const int64_t values[4] = {0, -5, 50256, int64_t(1) << 31};
  std::memcpy(ids.raw(), values, sizeof(values));
  const std::string path = file("ints.safetensors");
  write_safetensors(path, {{"ids", ids}, {"small", ids.slice(0, 3)}});
  const SafetensorsFile f = SafetensorsFile::open(path);
  const Tensor small = f.load("small", DType::kI32);
  EXPECT_EQ(small.data<int32_t>()[1], -5);
  EXPECT_EQ(small.data<int32_t>()[2], 50256);
  EXPECT_EQ(f.load("ids", DType::kI64).data<int64_t>()[3], int64_t(1) << 31);
  EXPECT_EQ(f.load("ids").data<float>()[2], 50256.0f);  // int -> float is allowed
  expect_error([&] { f.load("ids", DType::kI32); }, {"'ids'", path, "does not fit in I32"});
  write_safetensors(file("f.safetensors"), {{"w", Tensor::zeros({2}, DType::kF32)}});
  expect_error([&] { SafetensorsFile::open(file("f.safetensors")).load("w", DType::kI64); },
               {"'w'", "f.safetensors", "refusing"});
}

TEST_F(Safetensors, ViewIsZeroCopyAndKeepsTheMappingAlive) {
  Tensor t = Tensor::empty({1000}, DType::kF32);
  for (int i = 0; i < 1000; ++i) t.data<float>()[i] = float(i) * 0.5f;
  const std::string path = file("big.safetensors");
  write_safetensors(path, {{"w", t}});
  Tensor v;
  {
    const SafetensorsFile f = SafetensorsFile::open(path);
    v = f.view("w");
    const Tensor again = f.view("w");
    EXPECT_EQ(v.raw(), again.raw());  // the same mapped bytes, no copy
  }
  // The file object is gone, and so is the file; the view still reads.
  std::filesystem::remove(path);
  EXPECT_EQ(v.data<float>()[999], 499.5f);
  EXPECT_EQ(v.shape(), Shape({1000}));
}

TEST_F(Safetensors, MetadataRoundTrips) {
  const std::string path = file("meta.safetensors");
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "a \"quoted\" value\n"}};
  write_safetensors(path, {{"x", Tensor::zeros({2}, DType::kF32)}}, meta);
  EXPECT_EQ(SafetensorsFile::open(path).metadata(), meta);
  write_safetensors(path, {{"x", Tensor::zeros({2}, DType::kF32)}});  // overwrite, no metadata
  EXPECT_TRUE(SafetensorsFile::open(path).metadata().empty());
}

TEST_F(Safetensors, WriteRejectsDuplicatesAndLeavesNothingBehind) {
  const std::string path = file("dup.safetensors");
  const Tensor z = Tensor::zeros({2}, DType::kF32);
  expect_error([&] { write_safetensors(path, {{"x", z}, {"x", z}}); }, {"'x'", "twice", path});
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  expect_error([&] { write_safetensors(file("no/such/dir.safetensors"), {{"x", z}}); }, {"no/such/dir.safetensors"});
}

TEST_F(Safetensors, MissingTensorSuggestsTheNearestName) {
  const std::string path = file("m.safetensors");
  write_safetensors(path, {{"model.layers.0.mlp.up_proj.weight", Tensor::zeros({2}, DType::kF32)},
                           {"model.norm.weight", Tensor::zeros({2}, DType::kF32)}});
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_TRUE(f.contains("model.norm.weight"));
  EXPECT_FALSE(f.contains("model.norm.bias"));
  expect_error([&] { f.view("model.layers.0.mlp.up_proj.weigth"); },
               {"tensor 'model.layers.0.mlp.up_proj.weigth' not found in", path,
                "did you mean 'model.layers.0.mlp.up_proj.weight'"});
  expect_error([&] { f.load("lm_head.weight"); }, {"'lm_head.weight' not found", path});
}

// ---- corruption: every error is a ptune::Error naming the file ----

class SafetensorsCorrupt : public testing::ScratchDir {
 protected:
  // Writes the file and expects open() to fail with the path and `needles`.
  void expect_open_fails(const std::string& bytes, std::initializer_list<std::string> needles) {
    const std::string path = file("bad.safetensors");
    write_bytes(path, bytes);
    expect_error([&] { SafetensorsFile::open(path); }, {path});
    expect_error([&] { SafetensorsFile::open(path); }, needles);
  }
};

TEST_F(SafetensorsCorrupt, TruncatedFile) { expect_open_fails("abc", {"3 bytes", "shorter than"}); }
TEST_F(SafetensorsCorrupt, EmptyFile) { expect_open_fails("", {"0 bytes"}); }
TEST_F(SafetensorsCorrupt, MissingFile) {
  expect_error([&] { SafetensorsFile::open(file("nope.safetensors")); }, {"nope.safetensors", "No such file"});
}

TEST_F(SafetensorsCorrupt, HeaderLengthBeyondFile) {
  std::string b = safetensors_bytes("{}", "");
  b[0] = char(200);
  expect_open_fails(b, {"200-byte header", "only 10 bytes"});
}

TEST_F(SafetensorsCorrupt, HeaderLengthAbsurd) {
  std::string b = safetensors_bytes("{}", "");
  b[5] = 1;  // 2^40 + 2
  expect_open_fails(b, {"header", "limit"});
}

TEST_F(SafetensorsCorrupt, BadJson) {
  expect_open_fails(safetensors_bytes("{\"a\": {\"dtype\": \"F32\",,}}", ""), {"invalid JSON", "1:"});
}

TEST_F(SafetensorsCorrupt, HeaderNotAnObject) { expect_open_fails(safetensors_bytes("[1, 2]", ""), {"not a JSON object"}); }

TEST_F(SafetensorsCorrupt, MissingKeys) {
  expect_open_fails(safetensors_bytes(R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", std::string(8, '\0')),
                    {"'w'", "no 'dtype'"});
  expect_open_fails(safetensors_bytes(R"({"w": {"dtype": "F32", "data_offsets": [0, 8]}})", std::string(8, '\0')),
                    {"'w'", "no 'shape'"});
  expect_open_fails(safetensors_bytes(R"({"w": {"dtype": "F32", "shape": [2]}})", std::string(8, '\0')),
                    {"'w'", "no 'data_offsets'"});
}

TEST_F(SafetensorsCorrupt, BadShape) {
  expect_open_fails(safetensors_bytes(R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})",
                                      std::string(8, '\0')),
                    {"'w'", "non-negative"});
  expect_open_fails(safetensors_bytes(R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})",
                                      std::string(8, '\0')),
                    {"'w'", "non-negative"});
  expect_open_fails(safetensors_bytes(R"({"w": {"dtype": "F32", "shape": [1,1,1,1,1,1,1], "data_offsets": [0, 4]}})",
                                      std::string(4, '\0')),
                    {"'w'", "7 dimensions"});
}

TEST_F(SafetensorsCorrupt, OffsetsPastTheEnd) {
  expect_open_fails(safetensors_bytes(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                                      std::string(8, '\0')),
                    {"'w'", "past the end", "8 bytes"});
}

TEST_F(SafetensorsCorrupt, BeginAfterEnd) {
  expect_open_fails(safetensors_bytes(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})",
                                      std::string(8, '\0')),
                    {"'w'", "begin > end"});
}

TEST_F(SafetensorsCorrupt, BadOffsetsForm) {
  expect_open_fails(safetensors_bytes(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})",
                                      std::string(4, '\0')),
                    {"'w'", "two non-negative integers"});
}

TEST_F(SafetensorsCorrupt, SizeMismatchWithShape) {
  expect_open_fails(safetensors_bytes(R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}})",
                                      std::string(8, '\0')),
                    {"'w'", "(3)", "6 bytes", "span 8 bytes"});
  // Size checks apply to dtypes ptune does not read, too.
  expect_open_fails(safetensors_bytes(R"({"w": {"dtype": "F64", "shape": [2], "data_offsets": [0, 8]}})",
                                      std::string(8, '\0')),
                    {"'w'", "16 bytes"});
}

TEST_F(SafetensorsCorrupt, OverlappingTensors) {
  expect_open_fails(safetensors_bytes(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                      std::string(12, '\0')),
                    {"'a'", "'b'", "overlap"});
}

TEST_F(SafetensorsCorrupt, BadMetadata) {
  expect_open_fails(safetensors_bytes(R"({"__metadata__": {"n": 3}})", ""), {"__metadata__", "'n'", "not a string"});
}

TEST_F(SafetensorsCorrupt, UnsupportedDtypeFailsOnlyOnAccess) {
  const std::string path = file("odd.safetensors");
  write_bytes(path, safetensors_bytes(R"({"odd": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
                                          "ok": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
                                      std::string(16, '\0')));
  const SafetensorsFile f = SafetensorsFile::open(path);  // opens: "odd" is never needed
  EXPECT_EQ(f.view("ok").numel(), 2);
  EXPECT_EQ(f.info("odd").file_dtype, "F64");
  EXPECT_FALSE(f.info("odd").dtype.has_value());
  expect_error([&] { f.view("odd"); }, {"unsupported dtype F64 for tensor 'odd'", path});
  expect_error([&] { f.load("odd"); }, {"unsupported dtype F64", path});
}

// ---- written by the Python `safetensors` package (tests/golden/gen_safetensors_fixture.py) ----

TEST(SafetensorsInterop, ReadsPythonWrittenFileExactly) {
  const std::string path = std::string(PTUNE_FIXTURES) + "/io/mixed_dtypes.safetensors";
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("source"), "gen_safetensors_fixture.py");
  EXPECT_EQ(f.size(), 10u);

  const Tensor w = f.view("f32.weight");
  ASSERT_EQ(w.shape(), Shape({3, 4}));
  for (int i = 0; i < 12; ++i) EXPECT_EQ(w.data<float>()[i], float(i) * 0.25f - 1.0f);

  for (const char* half : {"f16", "bf16"}) {
    SCOPED_TRACE(half);
    const Tensor got = f.load(std::string(half) + ".weight");
    const Tensor want = f.view(std::string(half) + ".expected");
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0);  // bit-exact, -0 and inf included
  }
  EXPECT_EQ(f.info("f16.weight").dtype, DType::kF16);
  EXPECT_EQ(f.info("bf16.weight").dtype, DType::kBF16);
  EXPECT_TRUE(std::isinf(f.load("f16.weight").data<float>()[1]));

  const Tensor ids = f.view("i64.ids");
  const int64_t want_ids[5] = {0, 1, -3, int64_t(1) << 40, 50256};
  ASSERT_EQ(ids.shape(), Shape({5}));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ids.data<int64_t>()[i], want_ids[i]);
  const Tensor i32 = f.view("i32.ids");
  EXPECT_EQ(i32.shape(), Shape({2, 2}));
  EXPECT_EQ(i32.data<int32_t>()[2], 2147483647);
  EXPECT_EQ(i32.data<int32_t>()[3], -2147483647 - 1);

  EXPECT_EQ(f.view("scalar").shape(), Shape({}));
  EXPECT_EQ(f.view("scalar").data<float>()[0], 3.5f);
  EXPECT_EQ(f.view("empty").shape(), Shape({0, 4}));
  EXPECT_EQ(f.info("u8.mask").file_dtype, "U8");
  expect_error([&] { f.view("u8.mask"); }, {"unsupported dtype U8", "mixed_dtypes.safetensors"});
}

}  // namespace
}  // namespace ptune::io
