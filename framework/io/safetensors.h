// The safetensors format: an 8-byte little-endian header length N, N bytes
// of JSON header, then the data section. The header maps each tensor name
// to {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} with
// offsets relative to the data section (which starts at 8 + N), plus an
// optional "__metadata__" string -> string map.
//
// SafetensorsFile maps the file read-only and validates the whole header at
// open; views are zero-copy and keep the mapping alive. Writing through a
// view faults (the mapping is PROT_READ): frozen weights are never written.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/tensor.h"

namespace ptune::io {

struct TensorInfo {
  std::string name;
  std::string file_dtype;       // as spelled in the header: "F32", "BF16", "F64", …
  std::optional<DType> dtype;   // nullopt when ptune has no such dtype (F64, U8, BOOL, F8_*, …)
  Shape shape;
  uint64_t begin = 0;           // byte range [begin, end) within the data section
  uint64_t end = 0;

  uint64_t nbytes() const { return end - begin; }
};

// "F32" -> kF32, …; nullopt for dtypes ptune does not compute in.
std::optional<DType> dtype_from_safetensors(const std::string& name);
// kF32 -> "F32", …
const char* safetensors_dtype_name(DType dtype);

class SafetensorsFile {
 public:
  // Maps and validates `path`; throws ptune::Error naming the file (and the
  // tensor) on any inconsistency. Tensors in dtypes ptune does not support
  // are recorded and fail only when accessed, so a checkpoint with an
  // unused odd tensor still opens.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  size_t size() const { return tensors_.size(); }
  const TensorInfo& info(const std::string& name) const;
  // Zero-copy view of the mapped bytes in the file's dtype. Data is aligned
  // to its dtype size relative to the data section only, which x86 and
  // ARMv8 tolerate.
  Tensor view(const std::string& name) const;
  // An owning CPU copy converted to `to` (f16/bf16 -> f32, i64 -> i32, …).
  // Floating -> integer is refused; integer narrowing is range-checked.
  Tensor load(const std::string& name, DType to = DType::kF32) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  struct Mapping;  // the mmap, unmapped when the last view is gone

 private:
  std::string path_;
  std::shared_ptr<const Mapping> mapping_;
  const char* data_ = nullptr;  // start of the data section
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (names unique) to `path` atomically (via `path.tmp`).
// As the Python `safetensors` package does, tensors are laid out without
// gaps, largest dtype first and then by name, so every tensor is aligned to
// its dtype size; the header is padded with spaces to a multiple of 8 so the
// data section starts aligned. Non-CPU tensors are copied to the CPU.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// "did you mean 'X'?" for the candidate nearest `name` (edit distance), or
// "" when none is close. Shared with CheckpointReader.
std::string suggest_nearest(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace ptune::io
