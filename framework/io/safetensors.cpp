#include "framework/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "framework/core/error.h"
#include "framework/io/atomic_file.h"
#include "framework/io/json_file.h"

namespace ptune::io {

// The safetensors reference implementation refuses headers above 100 MB:
// a larger length is a corrupt or hostile file, not a big checkpoint.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct SafetensorsFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  Mapping(void* a, size_t s) : addr(a), size(s) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr != nullptr) ::munmap(addr, size);
  }
};

namespace {

// Element size of every dtype the format defines, supported or not, so
// that sizes are checked even for tensors ptune will never read. Sub-byte
// dtypes (F4, F6_*) are absent: their size is not checked.
constexpr std::pair<const char*, uint64_t> kFileDtypeSizes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
    {"F32", 4},  {"F64", 8}, {"I64", 8}, {"U64", 8},     {"C64", 8}};

std::optional<uint64_t> file_dtype_size(const std::string& name) {
  for (const auto& [n, s] : kFileDtypeSizes)
    if (name == n) return s;
  return std::nullopt;
}

bool is_floating(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Reads one entry of the header into `info`; `where` names tensor and file.
TensorInfo parse_entry(const std::string& name, const nlohmann::json& entry, uint64_t data_size,
                       const std::string& path) {
  const std::string where = fmt::format("tensor '{}' in {}", name, path);
  PTUNE_CHECK(entry.is_object(), "header entry for {} is not an object", where);
  TensorInfo info;
  info.name = name;

  PTUNE_CHECK(entry.contains("dtype"), "{} has no 'dtype'", where);
  PTUNE_CHECK(entry["dtype"].is_string(), "'dtype' of {} is not a string", where);
  info.file_dtype = entry["dtype"].get<std::string>();
  info.dtype = dtype_from_safetensors(info.file_dtype);

  PTUNE_CHECK(entry.contains("shape"), "{} has no 'shape'", where);
  const nlohmann::json& shape = entry["shape"];
  PTUNE_CHECK(shape.is_array(), "'shape' of {} is not a list", where);
  PTUNE_CHECK(shape.size() <= size_t(Shape::kMaxDims), "{} has {} dimensions; ptune supports at most {}",
              where, shape.size(), Shape::kMaxDims);
  uint64_t numel = 1;
  bool overflow = false;
  for (const auto& d : shape) {
    PTUNE_CHECK(d.is_number_unsigned(), "'shape' of {} must hold non-negative integers, got {}", where,
                shape.dump());
    const uint64_t v = d.get<uint64_t>();
    PTUNE_CHECK(v <= uint64_t(std::numeric_limits<int64_t>::max()), "dimension {} of {} is too large", v,
                where);
    overflow |= __builtin_mul_overflow(numel, v, &numel);
    info.shape.push_back(int64_t(v));
  }

  PTUNE_CHECK(entry.contains("data_offsets"), "{} has no 'data_offsets'", where);
  const nlohmann::json& offsets = entry["data_offsets"];
  PTUNE_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                  offsets[1].is_number_unsigned(),
              "'data_offsets' of {} must be two non-negative integers, got {}", where, offsets.dump());
  info.begin = offsets[0].get<uint64_t>();
  info.end = offsets[1].get<uint64_t>();
  PTUNE_CHECK(info.begin <= info.end, "{} has data_offsets [{}, {}] with begin > end", where, info.begin,
              info.end);
  PTUNE_CHECK(info.end <= data_size, "{} has data_offsets [{}, {}] past the end of the data ({} bytes)", where,
              info.begin, info.end, data_size);

  if (const auto elem = file_dtype_size(info.file_dtype)) {
    uint64_t bytes = 0;
    overflow |= __builtin_mul_overflow(numel, *elem, &bytes);
    PTUNE_CHECK(!overflow && bytes == info.nbytes(),
                "{} is {} {} ({} bytes) but its data_offsets [{}, {}] span {} bytes", where, info.file_dtype,
                info.shape.str(), overflow ? std::string("too many") : std::to_string(bytes), info.begin,
                info.end, info.nbytes());
  }
  return info;
}

}  // namespace

std::optional<DType> dtype_from_safetensors(const std::string& name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  if (name == "I32") return DType::kI32;
  if (name == "I64") return DType::kI64;
  return std::nullopt;
}

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI32: return "I32";
    case DType::kI64: return "I64";
  }
  PTUNE_FAIL("unknown dtype {}", int(dtype));
}

std::string suggest_nearest(const std::string& name, const std::vector<std::string>& candidates) {
  const std::string* best = nullptr;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(name, c);
    if (d < best_distance) {
      best_distance = d;
      best = &c;
    }
  }
  // Only a near miss is worth suggesting (a typo, a different layer index).
  if (best == nullptr || best_distance > std::max<size_t>(2, name.size() / 3)) return "";
  return fmt::format(" (did you mean '{}'?)", *best);
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  PTUNE_CHECK(fd >= 0, "cannot open {}: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    PTUNE_FAIL("cannot stat {}: {}", path, std::strerror(e));
  }
  const uint64_t file_size = uint64_t(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    PTUNE_FAIL("{} is not a safetensors file: {} bytes, shorter than the 8-byte header length", path,
               file_size);
  }
  void* addr = ::mmap(nullptr, size_t(file_size), PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file open
  PTUNE_CHECK(addr != MAP_FAILED, "cannot mmap {}: {}", path, std::strerror(map_errno));
  file.mapping_ = std::make_shared<const Mapping>(addr, size_t(file_size));
  const auto* base = static_cast<const unsigned char*>(addr);

  uint64_t header_len = 0;  // little-endian on disk, whatever the host
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];
  PTUNE_CHECK(header_len <= kMaxHeaderBytes, "{} declares a {}-byte header (limit {}): not a safetensors file",
              path, header_len, kMaxHeaderBytes);
  PTUNE_CHECK(header_len <= file_size - 8, "{} declares a {}-byte header but the file has only {} bytes", path,
              header_len, file_size);
  const uint64_t data_size = file_size - 8 - header_len;
  file.data_ = reinterpret_cast<const char*>(base) + 8 + header_len;

  const std::string_view header_text(reinterpret_cast<const char*>(base) + 8, size_t(header_len));
  const nlohmann::json header = parse_json(header_text, path + " (header)");
  PTUNE_CHECK(header.is_object(), "the header of {} is not a JSON object", path);

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      PTUNE_CHECK(entry.is_object(), "__metadata__ in {} is not an object", path);
      for (const auto& [key, value] : entry.items()) {
        PTUNE_CHECK(value.is_string(), "__metadata__ value for '{}' in {} is not a string", key, path);
        file.metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    file.tensors_.emplace(name, parse_entry(name, entry, data_size, path));
  }

  // Two tensors sharing bytes means a corrupt header (safetensors never
  // aliases); empty tensors occupy no bytes and cannot overlap.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& [name, info] : file.tensors_)
    if (info.nbytes() > 0) by_offset.push_back(&info);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& prev = *by_offset[i - 1];
    const TensorInfo& cur = *by_offset[i];
    PTUNE_CHECK(cur.begin >= prev.end, "tensors '{}' [{}, {}) and '{}' [{}, {}) overlap in {}", prev.name,
                prev.begin, prev.end, cur.name, cur.begin, cur.end, path);
  }
  return file;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, info] : tensors_) out.push_back(name);
  return out;  // std::map keeps them sorted
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end())
    PTUNE_FAIL("tensor '{}' not found in {}{}", name, path_, suggest_nearest(name, names()));
  return it->second;
}

Tensor SafetensorsFile::view(const std::string& name) const {
  const TensorInfo& i = info(name);
  PTUNE_CHECK(i.dtype.has_value(), "unsupported dtype {} for tensor '{}' in {} (ptune reads F32, F16, BF16, I32, I64)",
              i.file_dtype, name, path_);
  // The view is read-only in fact (PROT_READ); Tensor has no const views.
  void* data = const_cast<char*>(data_ + i.begin);
  return Tensor::borrow(data, i.shape, *i.dtype, Device::cpu(),
                        std::shared_ptr<void>(std::const_pointer_cast<Mapping>(mapping_)));
}

Tensor SafetensorsFile::load(const std::string& name, DType to) const {
  const Tensor v = view(name);
  const DType from = v.dtype();
  PTUNE_CHECK(!(is_floating(from) && !is_floating(to)),
              "tensor '{}' in {} is {}; refusing to load it as {}", name, path_, safetensors_dtype_name(from),
              safetensors_dtype_name(to));
  if (from == DType::kI64 && to == DType::kI32) {
    const int64_t* p = v.data<int64_t>();
    for (int64_t k = 0; k < v.numel(); ++k)
      PTUNE_CHECK(p[k] >= std::numeric_limits<int32_t>::min() && p[k] <= std::numeric_limits<int32_t>::max(),
                  "tensor '{}' in {}: element {} = {} does not fit in I32", name, path_, k, p[k]);
  }
  return v.to(to);
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> cpu;
  cpu.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    PTUNE_CHECK(!name.empty() && name != "__metadata__", "cannot write a tensor named '{}' to {}", name, path);
    PTUNE_CHECK(t.defined() || t.numel() == 0, "tensor '{}' written to {} has no storage", name, path);
    cpu.emplace_back(name, t.device().is_cpu() ? t : t.to(Device::cpu()));
  }
  // Largest element first keeps every tensor aligned to its dtype size with
  // no gaps (readers such as the Python package reject gaps).
  std::sort(cpu.begin(), cpu.end(), [](const auto& a, const auto& b) {
    const size_t sa = dtype_size(a.second.dtype()), sb = dtype_size(b.second.dtype());
    return sa != sb ? sa > sb : a.first < b.first;
  });
  for (size_t i = 1; i < cpu.size(); ++i)
    PTUNE_CHECK(cpu[i].first != cpu[i - 1].first, "tensor '{}' given twice for {}", cpu[i].first, path);

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : cpu) {
    const uint64_t bytes = t.nbytes();
    nlohmann::ordered_json entry;
    entry["dtype"] = safetensors_dtype_name(t.dtype());
    entry["shape"] = std::vector<int64_t>(t.shape().begin(), t.shape().end());
    entry["data_offsets"] = {offset, offset + bytes};
    header[name] = std::move(entry);
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-aligned

  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));
  AtomicFileWriter out(path);
  out.write(len, 8);
  out.write(text.data(), text.size());
  for (const auto& [name, t] : cpu)
    if (t.nbytes() > 0) out.write(t.raw(), t.nbytes());
  out.commit();
}

}  // namespace ptune::io
