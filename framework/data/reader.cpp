#include "framework/data/reader.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <unordered_set>

#include "framework/core/error.h"
#include "framework/io/json_file.h"

namespace ptune::data {

const std::string* Record::find(std::string_view name) const {
  for (const auto& [k, v] : fields)
    if (k == name) return &v;
  return nullptr;
}

const std::vector<std::string>* Record::find_list(std::string_view name) const {
  for (const auto& [k, v] : lists)
    if (k == name) return &v;
  return nullptr;
}

std::string Record::field_names() const {
  std::string s;
  for (const auto& [k, v] : fields) {
    if (!s.empty()) s += ", ";
    s += k;
  }
  for (const auto& [k, v] : lists) {
    if (!s.empty()) s += ", ";
    s += k + "[]";
  }
  return s;
}

Format resolve_format(const std::string& path, Format format) {
  if (format != Format::kAuto) return format;
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (ext == ".jsonl" || ext == ".json") return Format::kJsonl;
  if (ext == ".csv") return Format::kCsv;
  if (ext == ".tsv") return Format::kTsv;
  if (ext == ".conll") return Format::kConll;
  PTUNE_FAIL("{}: cannot tell the data format from the extension '{}' (expected .jsonl, .json, .csv, .tsv or "
             ".conll); set data.format",
             path, ext);
}

namespace {

std::string_view strip_bom(std::string_view text) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  return text;
}

// Calls f(line_number, line) for each line, without its "\n" or "\r\n".
template <class F>
void for_each_line(std::string_view text, F&& f) {
  int64_t line = 1;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(pos, end - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    f(line, l);
    pos = end + 1;
    ++line;
  }
}

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

std::vector<Record> parse_jsonl(std::string_view text, const std::string& origin) {
  std::vector<Record> out;
  for_each_line(text, [&](int64_t line, std::string_view l) {
    if (is_blank(l)) return;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(l);
    } catch (const nlohmann::json::parse_error& e) {  // e.byte: 1-based within the line
      PTUNE_FAIL("{}:{}: invalid JSON at column {}: {}", origin, line, e.byte, io::json_error_text(e));
    } catch (const nlohmann::json::exception& e) {  // well-formed but unrepresentable: a number beyond double
      PTUNE_FAIL("{}:{}: invalid JSON: {}", origin, line, io::json_error_text(e));
    }
    PTUNE_CHECK(j.is_object(), "{}:{}: expected a JSON object per line, got {}", origin, line, j.type_name());
    Record r;
    r.line = line;
    r.fields.reserve(j.size());
    for (auto it = j.begin(); it != j.end(); ++it) {
      const nlohmann::json& v = it.value();
      if (v.is_null()) continue;  // absent: an error only where the template or label needs it
      auto scalar = [](const nlohmann::json& x) { return x.is_string() ? x.get<std::string>() : x.dump(); };
      if (v.is_array()) {
        std::vector<std::string> list;
        list.reserve(v.size());
        for (size_t i = 0; i < v.size(); ++i) {
          PTUNE_CHECK(!v[i].is_structured() && !v[i].is_null(),
                      "{}:{}: field '{}' has a JSON {} at index {}; a list holds only strings, numbers and booleans",
                      origin, line, it.key(), v[i].type_name(), i);
          list.push_back(scalar(v[i]));
        }
        r.lists.emplace_back(it.key(), std::move(list));
        continue;
      }
      PTUNE_CHECK(!v.is_object(), "{}:{}: field '{}' is a JSON object; only strings, numbers, booleans and lists of them "
                  "are supported", origin, line, it.key());
      r.fields.emplace_back(it.key(), scalar(v));
    }
    out.push_back(std::move(r));
  });
  return out;
}

// Header names → checked for blanks and duplicates.
void check_header(const std::vector<std::string>& names, const std::string& origin, int64_t line) {
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    PTUNE_CHECK(!names[i].empty(), "{}:{}: header column {} has no name", origin, line, i + 1);
    PTUNE_CHECK(seen.insert(names[i]).second, "{}:{}: duplicate column '{}' in the header", origin, line, names[i]);
  }
}

Record make_record(const std::vector<std::string>& names, std::vector<std::string>&& values, int64_t line,
                   int64_t header_line, const std::string& origin) {
  PTUNE_CHECK(values.size() == names.size(), "{}:{}: {} columns, but the header ({}:{}) has {}", origin, line,
              values.size(), origin, header_line, names.size());
  Record r;
  r.line = line;
  r.fields.reserve(names.size());
  for (size_t i = 0; i < names.size(); ++i) r.fields.emplace_back(names[i], std::move(values[i]));
  return r;
}

std::vector<Record> parse_tsv(std::string_view text, const std::string& origin) {
  std::vector<Record> out;
  std::vector<std::string> names;
  int64_t header_line = 0;
  for_each_line(text, [&](int64_t line, std::string_view l) {
    if (l.empty()) return;
    std::vector<std::string> values;
    size_t pos = 0;
    while (true) {
      const size_t tab = l.find('\t', pos);
      values.emplace_back(l.substr(pos, tab == std::string_view::npos ? l.npos : tab - pos));
      if (tab == std::string_view::npos) break;
      pos = tab + 1;
    }
    if (header_line == 0) {
      check_header(values, origin, line);
      names = std::move(values);
      header_line = line;
      return;
    }
    out.push_back(make_record(names, std::move(values), line, header_line, origin));
  });
  return out;
}

std::vector<Record> parse_csv(std::string_view text, const std::string& origin) {
  std::vector<Record> out;
  std::vector<std::string> names;
  int64_t header_line = 0;
  int64_t line = 1;  // line of text[i]
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const int64_t record_line = line;
    std::vector<std::string> values;
    bool any_quoted = false;
    // One record: fields until an unquoted line end or the end of the text.
    while (true) {
      std::string field;
      if (i < n && text[i] == '"') {
        any_quoted = true;
        const int64_t open_line = line;
        ++i;
        while (true) {
          PTUNE_CHECK(i < n, "{}:{}: unterminated quoted field (the quote opens on this line)", origin, open_line);
          const char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        // After the closing quote: a separator, a line end or the end.
        const bool ok = i == n || text[i] == ',' || text[i] == '\n' || (text[i] == '\r' && (i + 1 == n || text[i + 1] == '\n'));
        PTUNE_CHECK(ok, "{}:{}: unexpected character '{}' after a closing quote (a quoted field must end at a comma or "
                    "the line end)",
                    origin, line, text[i]);
      } else {
        while (i < n && text[i] != ',' && text[i] != '\n') {
          if (text[i] == '\r' && (i + 1 == n || text[i + 1] == '\n')) break;
          PTUNE_CHECK(text[i] != '"', "{}:{}: quote inside an unquoted field (quote the whole field and double the "
                      "quotes inside it: \"say \"\"hi\"\"\")",
                      origin, line);
          field += text[i];
          ++i;
        }
      }
      values.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < n && text[i] == '\r') ++i;
      if (i < n && text[i] == '\n') {
        ++i;
        ++line;
      }
      break;
    }
    if (values.size() == 1 && values[0].empty() && !any_quoted) continue;  // blank line
    if (header_line == 0) {
      check_header(values, origin, record_line);
      names = std::move(values);
      header_line = record_line;
      continue;
    }
    out.push_back(make_record(names, std::move(values), record_line, header_line, origin));
  }
  return out;
}

std::vector<Record> parse_conll(std::string_view text, const std::string& origin) {
  std::vector<Record> out;
  std::vector<std::vector<std::string>> columns;  // the sentence so far, by column
  int64_t first_line = 0;
  auto flush = [&] {
    if (columns.empty()) return;
    Record r;
    r.line = first_line;
    r.lists.emplace_back("tokens", std::move(columns.front()));
    for (size_t c = 1; c + 1 < columns.size(); ++c)
      r.lists.emplace_back(fmt::format("column_{}", c + 1), std::move(columns[c]));
    r.lists.emplace_back("ner_tags", std::move(columns.back()));
    out.push_back(std::move(r));
    columns.clear();
  };
  for_each_line(text, [&](int64_t line, std::string_view l) {
    std::vector<std::string> cells;
    for (size_t pos = 0; pos < l.size();) {
      const size_t start = l.find_first_not_of(" \t", pos);
      if (start == std::string_view::npos) break;
      const size_t end = std::min(l.find_first_of(" \t", start), l.size());
      cells.emplace_back(l.substr(start, end - start));
      pos = end;
    }
    if (cells.empty()) return flush();
    if (cells.front() == "-DOCSTART-") {
      flush();
      return;
    }
    PTUNE_CHECK(cells.size() >= 2, "{}:{}: a CoNLL line needs a token and a tag, got '{}'", origin, line, l);
    if (columns.empty()) {
      first_line = line;
      columns.resize(cells.size());
    }
    PTUNE_CHECK(cells.size() == columns.size(), "{}:{}: {} columns, but this sentence's first line ({}:{}) has {}",
                origin, line, cells.size(), origin, first_line, columns.size());
    for (size_t c = 0; c < cells.size(); ++c) columns[c].push_back(std::move(cells[c]));
  });
  flush();
  return out;
}

}  // namespace

std::vector<Record> parse_records(std::string_view text, Format format, const std::string& origin) {
  text = strip_bom(text);
  switch (resolve_format(origin, format)) {
    case Format::kJsonl:
      return parse_jsonl(text, origin);
    case Format::kCsv:
      return parse_csv(text, origin);
    case Format::kTsv:
      return parse_tsv(text, origin);
    case Format::kConll:
      return parse_conll(text, origin);
    case Format::kAuto:
      break;
  }
  PTUNE_FAIL("{}: unresolved data format", origin);
}

std::vector<Record> read_records(const std::string& path, Format format) {
  const Format f = resolve_format(path, format);
  return parse_records(io::read_text_file(path), f, path);
}

}  // namespace ptune::data
