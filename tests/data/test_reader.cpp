// Readers: JSONL / CSV / TSV parsing, quoting edge cases, and every error
// naming FILE:LINE.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "framework/core/error.h"
#include "framework/data/reader.h"
#include "expect_error.h"

namespace ptune::data {
namespace {

using testing::error_of;

std::string field(const Record& r, const std::string& name) {
  const std::string* v = r.find(name);
  return v ? *v : "(absent)";
}

TEST(Reader, JsonlValuesBecomeText) {
  const auto rs = parse_records(
      "\xEF\xBB\xBF{\"s\": \"héllo \\\"x\\\"\", \"i\": 1, \"f\": 0.5, \"b\": true, \"n\": null}\r\n"
      "\n   \n"
      "{\"s\": \"\", \"i\": -3, \"f\": 1e3, \"b\": false}\n",
      Format::kJsonl, "d.jsonl");
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].line, 1);
  EXPECT_EQ(field(rs[0], "s"), "héllo \"x\"");
  EXPECT_EQ(field(rs[0], "i"), "1");
  EXPECT_EQ(field(rs[0], "f"), "0.5");
  EXPECT_EQ(field(rs[0], "b"), "true");
  EXPECT_EQ(field(rs[0], "n"), "(absent)");  // null: absent
  EXPECT_EQ(rs[1].line, 4);                  // blank lines skipped but counted
  EXPECT_EQ(field(rs[1], "s"), "");
  EXPECT_EQ(field(rs[1], "i"), "-3");
  EXPECT_EQ(field(rs[1], "f"), "1000.0");
  EXPECT_EQ(field(rs[1], "b"), "false");
}

TEST(Reader, JsonlErrorsNameFileAndLine) {
  EXPECT_NE(error_of([] { parse_records("{\"a\": 1}\n{\"a\": 2,}\n", Format::kJsonl, "d.jsonl"); })
                .find("d.jsonl:2: invalid JSON at column"),
            std::string::npos);
  // Well-formed JSON whose number is beyond double (found by tests/fuzz).
  EXPECT_NE(error_of([] { parse_records("{\"a\": 1}\n{\"a\": 333e3433}\n", Format::kJsonl, "d.jsonl"); })
                .find("d.jsonl:2: invalid JSON: number overflow parsing '333e3433'"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("{\"a\": 1}\n\n[1, 2]\n", Format::kJsonl, "d.jsonl"); })
                .find("d.jsonl:3: expected a JSON object per line, got array"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("{\"a\": {\"b\": 1}}\n", Format::kJsonl, "d.jsonl"); })
                .find("d.jsonl:1: field 'a' is a JSON object"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("{\"a\": 1}\n{\"xs\": [1, [2]]}", Format::kJsonl, "d.jsonl"); })
                .find("d.jsonl:2: field 'xs' has a JSON array at index 1"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("{\"xs\": [\"a\", null]}", Format::kJsonl, "d.jsonl"); })
                .find("d.jsonl:1: field 'xs' has a JSON null at index 1"),
            std::string::npos);
}

// Token classification's words and tags: arrays of scalars, kept as text.
TEST(Reader, JsonlListFields) {
  const auto rs = parse_records(R"({"tokens": ["EU", "rejects", "German"], "tags": [3, 0, 7], "ok": [true], "n": []})",
                                Format::kJsonl, "d.jsonl");
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_NE(rs[0].find_list("tokens"), nullptr);
  EXPECT_EQ(*rs[0].find_list("tokens"), (std::vector<std::string>{"EU", "rejects", "German"}));
  EXPECT_EQ(*rs[0].find_list("tags"), (std::vector<std::string>{"3", "0", "7"}));
  EXPECT_EQ(*rs[0].find_list("ok"), (std::vector<std::string>{"true"}));
  EXPECT_TRUE(rs[0].find_list("n")->empty());
  EXPECT_EQ(rs[0].find("tokens"), nullptr);  // a list is not a text field
  EXPECT_EQ(rs[0].field_names(), "n[], ok[], tags[], tokens[]");  // nlohmann::json orders keys
}

// CoNLL-2003's layout: a sentence per block, -DOCSTART- skipped, the first
// column the tokens and the last the tags.
TEST(Reader, ConllSentencesBecomeListRecords) {
  const std::string text =
      "-DOCSTART- -X- -X- O\r\n"
      "\r\n"
      "EU NNP B-NP B-ORG\r\n"
      "rejects VBZ B-VP O\r\n"
      "\r\n"
      "\r\n"
      "Peter\tNNP\tB-NP\tB-PER\n"
      "Blackburn  NNP I-NP   I-PER";  // tabs or runs of spaces; no final newline
  const auto rs = parse_records(text, Format::kConll, "eng.train");
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].line, 3);
  EXPECT_EQ(*rs[0].find_list("tokens"), (std::vector<std::string>{"EU", "rejects"}));
  EXPECT_EQ(*rs[0].find_list("column_2"), (std::vector<std::string>{"NNP", "VBZ"}));
  EXPECT_EQ(*rs[0].find_list("column_3"), (std::vector<std::string>{"B-NP", "B-VP"}));
  EXPECT_EQ(*rs[0].find_list("ner_tags"), (std::vector<std::string>{"B-ORG", "O"}));
  EXPECT_EQ(rs[1].line, 7);
  EXPECT_EQ(*rs[1].find_list("ner_tags"), (std::vector<std::string>{"B-PER", "I-PER"}));
  EXPECT_EQ(resolve_format("data/train.conll", Format::kAuto), Format::kConll);

  const auto two = parse_records("a O\nb B-X\n", Format::kConll, "t.conll");
  ASSERT_EQ(two.size(), 1u);
  EXPECT_EQ(two[0].field_names(), "tokens[], ner_tags[]");
}

TEST(Reader, ConllErrorsNameFileAndLine) {
  EXPECT_NE(error_of([] { parse_records("a O\nb\n", Format::kConll, "t.conll"); })
                .find("t.conll:2: a CoNLL line needs a token and a tag, got 'b'"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("\na X O\nb O\n", Format::kConll, "t.conll"); })
                .find("t.conll:3: 2 columns, but this sentence's first line (t.conll:2) has 3"),
            std::string::npos);
}

TEST(Reader, CsvQuotingEdgeCases) {
  const std::string text =
      "text,label,note\r\n"
      "\"a, b\",1,\"say \"\"hi\"\"\"\r\n"
      "\"two\nlines\",0,\r\n"  // quoted field across lines; empty last field
      "plain,\"\",x\r\n"        // quoted empty field
      "\r\n"                    // blank line skipped
      "last,1,\"\"\"\"";        // no final newline; a field that is one quote
  const auto rs = parse_records(text, Format::kCsv, "d.csv");
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[0].line, 2);
  EXPECT_EQ(field(rs[0], "text"), "a, b");
  EXPECT_EQ(field(rs[0], "note"), "say \"hi\"");
  EXPECT_EQ(rs[1].line, 3);
  EXPECT_EQ(field(rs[1], "text"), "two\nlines");
  EXPECT_EQ(field(rs[1], "note"), "");
  EXPECT_EQ(rs[2].line, 5);  // the record after a two-line record
  EXPECT_EQ(field(rs[2], "label"), "");
  EXPECT_EQ(rs[3].line, 7);
  EXPECT_EQ(field(rs[3], "note"), "\"");
}

TEST(Reader, CsvErrorsNameFileAndLine) {
  EXPECT_NE(error_of([] { parse_records("a,b\n1,2\n1,2,3\n", Format::kCsv, "d.csv"); })
                .find("d.csv:3: 3 columns, but the header (d.csv:1) has 2"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("a,b\n1,2\n\"open,2\n3,4\n", Format::kCsv, "d.csv"); })
                .find("d.csv:3: unterminated quoted field"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("a,b\nx\"y,2\n", Format::kCsv, "d.csv"); })
                .find("d.csv:2: quote inside an unquoted field"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("a,b\n\"x\"y,2\n", Format::kCsv, "d.csv"); })
                .find("d.csv:2: unexpected character 'y' after a closing quote"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("a,a\n1,2\n", Format::kCsv, "d.csv"); })
                .find("d.csv:1: duplicate column 'a'"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("a,,c\n1,2,3\n", Format::kCsv, "d.csv"); })
                .find("d.csv:1: header column 2 has no name"),
            std::string::npos);
}

TEST(Reader, TsvHasNoQuoting) {
  const auto rs = parse_records("sentence\tlabel\r\n\"quoted\", kept\t1\n\nx\t\n", Format::kTsv, "d.tsv");
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(field(rs[0], "sentence"), "\"quoted\", kept");
  EXPECT_EQ(field(rs[0], "label"), "1");
  EXPECT_EQ(rs[1].line, 4);
  EXPECT_EQ(field(rs[1], "label"), "");
  EXPECT_NE(error_of([] { parse_records("a\tb\n1\t2\n1\n", Format::kTsv, "d.tsv"); })
                .find("d.tsv:3: 1 columns, but the header (d.tsv:1) has 2"),
            std::string::npos);
}

TEST(Reader, FormatFromExtension) {
  EXPECT_EQ(resolve_format("x/train.jsonl", Format::kAuto), Format::kJsonl);
  EXPECT_EQ(resolve_format("x/train.JSON", Format::kAuto), Format::kJsonl);
  EXPECT_EQ(resolve_format("train.csv", Format::kAuto), Format::kCsv);
  EXPECT_EQ(resolve_format("train.tsv", Format::kAuto), Format::kTsv);
  EXPECT_EQ(resolve_format("train.txt", Format::kTsv), Format::kTsv);
  EXPECT_NE(error_of([] { resolve_format("train.txt", Format::kAuto); }).find("train.txt: cannot tell the data format"),
            std::string::npos);
}

TEST(Reader, ReadsFilesAndNamesThemInErrors) {
  const auto dir = std::filesystem::temp_directory_path() / ("ptune_reader_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "bad.csv").string();
  std::ofstream(path) << "a,b\n1,2\n3\n";
  EXPECT_NE(error_of([&] { read_records(path); }).find(path + ":3: 1 columns"), std::string::npos);
  std::ofstream(path) << "a,b\n1,2\n";
  const auto rs = read_records(path);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(field(rs[0], "b"), "2");
  EXPECT_NE(error_of([&] { read_records((dir / "missing.jsonl").string()); }).find("missing.jsonl"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Reader, SharedRteValidationSet) {
  const auto rs = read_records(std::string(PTUNE_DATASETS) + "/rte/val.jsonl");
  ASSERT_EQ(rs.size(), 277u);
  EXPECT_EQ(field(rs[0], "label"), "not_entailment");
  EXPECT_EQ(field(rs[0], "idx"), "0");
  EXPECT_EQ(field(rs[1], "hypothesis"), "Bacteria is winning the war against antibiotics.");
}

}  // namespace
}  // namespace ptune::data
