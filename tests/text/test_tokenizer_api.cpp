// The tokenizer's API around the golden tests: invalid UTF-8, malformed
// tokenizer.json (errors name the key), legacy vocabulary files, settings.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "framework/core/error.h"
#include "framework/text/tokenizer.h"
#include "framework/text/unicode.h"
#include "text/golden_util.h"
#include "expect_error.h"

namespace ptune::text {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

nlohmann::json load_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::temp_directory_path() / ("ptune_text_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

// ---------------------------------------------------------------- UTF-8

// HF's encode only takes valid strings (Rust &str, Python str), so invalid
// UTF-8 cannot reach it; ptune rejects it with an error naming the byte.
TEST(TokenizerUtf8, InvalidInputIsAClearError) {
  const Tokenizer tok = Tokenizer::from_file(fixture_dir("gpt2") / "tokenizer.json");
  const std::string cases[] = {"abc\xFF", "\xE4\xB8", "\xC0\x80", "\xED\xA0\x80", "ok \xF4\x90\x80\x80", "\x80"};
  for (const std::string& s : cases) {
    const std::string msg = error_of([&] { (void)tok.encode(s); });
    EXPECT_NE(msg.find("not valid UTF-8"), std::string::npos) << msg;
  }
  EXPECT_NE(error_of([&] { (void)tok.encode("abc\xFF"); }).find("offset 3"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)tok.encode_pair("fine", "bad \xC3"); }).find("not valid UTF-8"), std::string::npos);
  EXPECT_NO_THROW((void)tok.encode("\xF0\x9F\x98\x80 \xE4\xB8\xAD"));
}

// decode() output is always valid UTF-8: bytes that do not form a character
// become U+FFFD, one per maximal invalid subpart (Rust's from_utf8_lossy).
TEST(TokenizerUtf8, LossyDecodingFollowsRust) {
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xE0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xFF" "b"), "\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8_lossy("\xC3\xA9"), "\xC3\xA9");
  const Tokenizer tok = Tokenizer::from_file(fixture_dir("gpt2") / "tokenizer.json");
  // "中" is three byte-level tokens here; its first two alone are not a character.
  const Encoding e = tok.encode("中");
  ASSERT_GE(e.size(), 2u);
  const std::vector<uint32_t> part(e.ids.begin(), e.ids.end() - 1);
  EXPECT_EQ(tok.decode(part), "\xEF\xBF\xBD");
}

// ---------------------------------------------------------------- malformed files

struct Malformed {
  const char* what;
  std::function<void(nlohmann::json&)> edit;
  const char* key;  // must appear in the error
};

TEST(TokenizerJson, MalformedFilesNameTheFailingKey) {
  const nlohmann::json base = load_json(fixture_dir("bert") / "tokenizer.json");
  const nlohmann::json bpe = load_json(fixture_dir("roberta") / "tokenizer.json");
  const std::vector<std::pair<nlohmann::json, Malformed>> cases = {
      {base, {"no model", [](auto& j) { j.erase("model"); }, "'model'"}},
      {base, {"no vocab", [](auto& j) { j["model"].erase("vocab"); }, "'model.vocab'"}},
      {base, {"vocab id not a number", [](auto& j) { j["model"]["vocab"]["hello"] = "x"; }, "'model.vocab.hello'"}},
      {base, {"unknown normalizer", [](auto& j) { j["normalizer"]["type"] = "Nope"; }, "'normalizer.type'"}},
      {base, {"lowercase not a bool", [](auto& j) { j["normalizer"]["lowercase"] = 3; }, "'normalizer.lowercase'"}},
      {base, {"added token without content", [](auto& j) { j["added_tokens"][1].erase("content"); },
              "'added_tokens[1].content'"}},
      {base, {"bad truncation", [](auto& j) { j["truncation"]["strategy"] = "Middle"; }, "'truncation.strategy'"}},
      {base, {"bad padding", [](auto& j) { j["padding"]["pad_id"] = -1; }, "'padding.pad_id'"}},
      {base, {"template piece", [](auto& j) { j["post_processor"]["single"][1] = {{"Sequence", {{"id", "C"}, {"type_id", 0}}}}; },
              "'post_processor.single[1].Sequence.id'"}},
      {base, {"no model type", [](auto& j) { j["model"]["type"] = 7; }, "'model.type'"}},
      {bpe, {"merge not a pair", [](auto& j) { j["model"]["merges"][2] = {"a"}; }, "'model.merges[2]'"}},
      {bpe, {"split behaviour", [](auto& j) {
               j["pre_tokenizer"] = {{"type", "Sequence"},
                                     {"pretokenizers", {{{"type", "Digits"}},
                                                        {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", "Sideways"}}}}};
             }, "'pre_tokenizer.pretokenizers[1].behavior'"}},
      {bpe, {"decoder pattern", [](auto& j) { j["decoder"] = {{"type", "Replace"}, {"pattern", {{"Glob", "*"}}}, {"content", ""}}; },
             "'decoder.pattern'"}},
      {bpe, {"bad regex", [](auto& j) {
               j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
             }, "(unclosed"}},
      {bpe, {"merge of unknown token", [](auto& j) { j["model"]["merges"][0] = {"zzz_not_a_token", "a"}; }, "merge 0"}},
      // SentencePiece's compiled map: base64 of [u32 trie bytes][trie][pool].
      {base, {"charsmap not base64", [](auto& j) { j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AA*A"}}; },
              "'normalizer.precompiled_charsmap': invalid base64"}},
      {base, {"charsmap without its size", [](auto& j) { j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAA="}}; },
              "'normalizer.precompiled_charsmap': a precompiled charsmap of 2 bytes"}},
      {base, {"charsmap trie past its end", [](auto& j) {  // claims a 256-byte trie in 8 bytes
               j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAEAAAAAAAA="}};
             }, "'normalizer.precompiled_charsmap': the precompiled charsmap's trie of 256 bytes"}},
  };
  for (const auto& [json, c] : cases) {
    nlohmann::json j = json;
    c.edit(j);
    const std::string msg = error_of([&] { (void)Tokenizer::from_json(j.dump(), "my/tokenizer.json"); });
    EXPECT_NE(msg.find(c.key), std::string::npos) << c.what << ": " << msg;
    if (std::string(c.key).starts_with("'")) EXPECT_NE(msg.find("my/tokenizer.json"), std::string::npos) << msg;
  }
  EXPECT_NE(error_of([] { (void)Tokenizer::from_json("{\"model\": ", "t.json"); }).find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of([] { (void)Tokenizer::from_file("/nonexistent/tokenizer.json"); }).find("cannot open"),
            std::string::npos);
}

// ---------------------------------------------------------------- API

TEST(TokenizerApi, VocabularyLookups) {
  const Tokenizer tok = Tokenizer::from_directory(fixture_dir("bert"));
  EXPECT_EQ(tok.vocab_size(), 30522u);
  EXPECT_EQ(tok.token_to_id("[CLS]"), 101u);
  EXPECT_EQ(tok.token_to_id("hello"), 7592u);
  EXPECT_EQ(tok.token_to_id("not-a-token-at-all"), std::nullopt);
  EXPECT_EQ(tok.id_to_token(102), "[SEP]");
  EXPECT_EQ(tok.id_to_token(999999), std::nullopt);
  // Unknown ids are skipped by decode, as in HF.
  const std::vector<uint32_t> ids = {7592, 999999, 2088};
  EXPECT_EQ(tok.decode(ids), "hello world");
}

TEST(TokenizerApi, SettingsFromJsonAndFromCode) {
  Tokenizer tok = Tokenizer::from_file(fixture_dir("bert") / "tokenizer.json");
  ASSERT_TRUE(tok.truncation().has_value());
  EXPECT_EQ(tok.truncation()->max_length, 128u);
  ASSERT_TRUE(tok.padding().has_value());
  EXPECT_EQ(tok.padding()->length, 128u);
  EXPECT_EQ(tok.encode("hello").size(), 128u);

  tok.set_padding(std::nullopt);
  tok.set_truncation(Truncation{.max_length = 6});
  const Encoding e = tok.encode_pair("one two three four", "five six seven");
  EXPECT_EQ(e.size(), 6u);  // [CLS] a a [SEP] b [SEP]
  EXPECT_EQ(e.special_tokens_mask, (std::vector<uint32_t>{1, 0, 0, 1, 0, 1}));
  EXPECT_EQ(e.sequence_ids, (std::vector<int32_t>{-1, 0, 0, -1, 1, -1}));

  tok.set_truncation(std::nullopt);
  tok.set_padding(Padding{.direction = Side::kLeft, .pad_to_multiple_of = 8});
  const Encoding p = tok.encode("hello world");
  EXPECT_EQ(p.size(), 8u);
  EXPECT_EQ(p.attention_mask, (std::vector<uint32_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(p.ids.back(), 102u);
  // Offsets are bytes of the text given to encode.
  EXPECT_EQ(p.offsets[6], (Offsets{6, 11}));
}

// Hand-written files may give templates as strings, HF's other syntax.
TEST(TokenizerApi, TemplateStringsEqualTemplateObjects) {
  const nlohmann::json j = load_json(fixture_dir("llama") / "tokenizer.json");
  nlohmann::json s = j;
  s["post_processor"]["single"] = "<s> $A";
  s["post_processor"]["pair"] = nlohmann::json::array({"<s>", "$A", "<s>:1", "$B:1"});
  const Tokenizer a = Tokenizer::from_json(j.dump());
  const Tokenizer b = Tokenizer::from_json(s.dump());
  EXPECT_EQ(canonical(to_record(a, a.encode("Hello there"))), canonical(to_record(b, b.encode("Hello there"))));
  EXPECT_EQ(canonical(to_record(a, a.encode_pair("Hi", "you"))), canonical(to_record(b, b.encode_pair("Hi", "you"))));
  s["post_processor"]["single"] = "$1 <s>";  // $<n>: sequence A with type id n, as HF
  EXPECT_EQ(Tokenizer::from_json(s.dump()).encode("Hi").type_ids, (std::vector<uint32_t>{1, 1, 0}));
}

// ---------------------------------------------------------------- legacy files

void expect_same_encodings(const Tokenizer& a, const Tokenizer& b) {
  std::vector<std::string> texts = {"",
                                    "Hello, world! It's 2024.",
                                    "Café naïve 中文 😀 [CLS] <mask> <s> <|endoftext|>",
                                    "  spaces\tand\nnewlines  ",
                                    "supercalifragilisticexpialidocious"};
  std::size_t n = 0;
  for_each_dataset_line(fixture_dir("gpt2") / "datasets.json", [&](const DatasetLine& l) {
    if (n++ < 400) texts.push_back(l.text);
  });
  for (const std::string& t : texts) {
    EXPECT_EQ(canonical(to_record(a, a.encode(t))), canonical(to_record(b, b.encode(t)))) << t;
  }
  EXPECT_EQ(canonical(to_record(a, a.encode_pair(texts[1], texts[2]))),
            canonical(to_record(b, b.encode_pair(texts[1], texts[2]))));
}

TEST(TokenizerLegacy, VocabTxtIsBertUncased) {
  Tokenizer json = Tokenizer::from_file(fixture_dir("bert") / "tokenizer.json");
  json.set_truncation(std::nullopt);
  json.set_padding(std::nullopt);
  const nlohmann::json j = load_json(fixture_dir("bert") / "tokenizer.json");
  std::vector<std::string> vocab(j["model"]["vocab"].size());
  for (const auto& [token, id] : j["model"]["vocab"].items()) vocab[id.get<std::size_t>()] = token;
  TempDir dir("vocab_txt");
  std::string txt;
  for (const std::string& t : vocab) txt += t + "\n";
  write(dir.path() / "vocab.txt", txt);
  write(dir.path() / "tokenizer_config.json", R"({"do_lower_case": true})");
  const Tokenizer legacy = Tokenizer::from_directory(dir.path());
  EXPECT_EQ(legacy.vocab_size(), json.vocab_size());
  expect_same_encodings(json, legacy);
}

void write_bpe_files(const fs::path& fixture, const fs::path& dir) {
  const nlohmann::json j = load_json(fixture / "tokenizer.json");
  nlohmann::json vocab = j["model"]["vocab"];
  for (const auto& a : j["added_tokens"]) vocab[a["content"].get<std::string>()] = a["id"];
  write(dir / "vocab.json", vocab.dump());
  std::string merges = "#version: 0.2\n";
  for (const auto& m : j["model"]["merges"]) merges += m[0].get<std::string>() + " " + m[1].get<std::string>() + "\n";
  write(dir / "merges.txt", merges);
}

TEST(TokenizerLegacy, VocabJsonAndMergesAreGpt2) {
  const Tokenizer json = Tokenizer::from_file(fixture_dir("gpt2") / "tokenizer.json");
  TempDir dir("gpt2_files");
  write_bpe_files(fixture_dir("gpt2"), dir.path());
  expect_same_encodings(json, Tokenizer::from_directory(dir.path()));
}

TEST(TokenizerLegacy, VocabJsonAndMergesAreRobertaWhenConfigured) {
  const Tokenizer json = Tokenizer::from_file(fixture_dir("roberta") / "tokenizer.json");
  TempDir dir("roberta_files");
  write_bpe_files(fixture_dir("roberta"), dir.path());
  write(dir.path() / "tokenizer_config.json", R"({"tokenizer_class": "RobertaTokenizer"})");
  expect_same_encodings(json, Tokenizer::from_directory(dir.path()));
}

TEST(TokenizerLegacy, EmptyDirectoryIsAnError) {
  TempDir dir("empty");
  EXPECT_NE(error_of([&] { (void)Tokenizer::from_directory(dir.path()); }).find("no tokenizer.json"),
            std::string::npos);
}

}  // namespace
}  // namespace ptune::text
