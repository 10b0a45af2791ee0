// Writes a file so that a crash never leaves a half-written one behind:
// bytes go to `path.tmp`, are fsync'd, then renamed over `path` (rename is
// atomic on POSIX file systems). Dropping the writer before commit()
// removes the temporary file.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace ptune::io {

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t bytes);
  // Flushes, fsyncs and renames the temporary file onto the final path.
  void commit();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string tmp_path_;
  std::FILE* file_ = nullptr;
};

}  // namespace ptune::io
