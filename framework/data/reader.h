// Dataset files → records (field name → text), with errors that name FILE:LINE.
//
//   JSONL  one object per line; blank lines skipped. String, number and
//          boolean values are kept as text (JSON 1 → "1", 0.5 → "0.5",
//          true → "true"); a null value leaves the field absent (an error
//          only if something references it); an array of strings, numbers
//          and booleans is a list field (token classification's words and
//          tags), each element kept as text the same way; an object, or an
//          array holding anything else, is an error naming the field.
//   CSV    RFC 4180: a header row gives the field names; fields may be
//          quoted ("a, b", "say ""hi"""), quoted fields may span lines;
//          CRLF or LF line ends; blank lines skipped.
//   TSV    a header row; fields split on tabs, no quoting; blank lines skipped.
//   CoNLL  one token per line, columns split on spaces or tabs, a blank line
//          after each sentence, -DOCSTART- lines skipped (CoNLL-2003's
//          "EU NNP B-NP B-ORG"). A sentence is a record of list fields:
//          `tokens` (the first column), `ner_tags` (the last) and, for
//          columns in between, `column_2`, `column_3`, …; every line of a
//          sentence has the same number of columns, at least 2.
//
// A UTF-8 byte-order mark at the start of a file is ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/data/data_config.h"

namespace ptune::data {

struct Record {
  int64_t line = 0;  // 1-based line where the record starts
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<std::pair<std::string, std::vector<std::string>>> lists;  // JSONL arrays

  // nullptr when the record has no such field.
  const std::string* find(std::string_view name) const;
  const std::vector<std::string>* find_list(std::string_view name) const;
  // "a, b, c" (list fields marked "xs[]"): for error messages.
  std::string field_names() const;
};

// Format::kAuto → from the extension: .jsonl/.json, .csv, .tsv, .conll.
Format resolve_format(const std::string& path, Format format);

std::vector<Record> read_records(const std::string& path, Format format = Format::kAuto);
// The same on text in memory; `origin` names it in errors (FILE in FILE:LINE).
std::vector<Record> parse_records(std::string_view text, Format format, const std::string& origin);

}  // namespace ptune::data
