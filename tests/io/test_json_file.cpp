#include <gtest/gtest.h>

#include <filesystem>

#include "framework/io/json_file.h"
#include "io_test_util.h"

namespace ptune::io {
namespace {

using testing::expect_error;

class JsonFile : public testing::ScratchDir {};

TEST_F(JsonFile, WriteThenRead) {
  const std::string path = file("c.json");
  const nlohmann::json value = {{"hidden_size", 768}, {"architectures", {"GPT2LMHeadModel"}}, {"x", 0.5}};
  write_json_file(path, value);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(read_json_file(path), value);
  EXPECT_EQ(read_text_file(path).back(), '\n');
}

TEST_F(JsonFile, SyntaxErrorNamesFileLineAndColumn) {
  const std::string path = file("bad.json");
  testing::write_bytes(path, "{\n  \"a\": 1,\n  \"b\": tru\n}\n");
  expect_error([&] { read_json_file(path); }, {path + ":3:", "invalid JSON"});
  testing::write_bytes(path, "");
  expect_error([&] { read_json_file(path); }, {path + ":1:1", "invalid JSON"});
  // Well-formed, but the number is beyond double (found by tests/fuzz).
  testing::write_bytes(path, "{\"hidden_size\": 1e999}");
  expect_error([&] { read_json_file(path); }, {path + ": invalid JSON: number overflow parsing '1e999'"});
}

TEST_F(JsonFile, MissingFile) {
  expect_error([&] { read_json_file(file("none.json")); }, {"none.json", "No such file"});
}

}  // namespace
}  // namespace ptune::io
