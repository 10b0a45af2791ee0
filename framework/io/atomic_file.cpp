#include "framework/io/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "framework/core/error.h"

namespace ptune::io {

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)), tmp_path_(path_ + ".tmp") {
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  PTUNE_CHECK(file_ != nullptr, "cannot create {}: {}", tmp_path_, std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (file_ != nullptr) {  // not committed: an exception is unwinding
    std::fclose(file_);
    std::remove(tmp_path_.c_str());
  }
}

void AtomicFileWriter::write(const void* data, size_t bytes) {
  PTUNE_CHECK(file_ != nullptr, "{} was already committed", path_);
  if (bytes == 0) return;
  const size_t n = std::fwrite(data, 1, bytes, file_);
  PTUNE_CHECK(n == bytes, "cannot write {} ({} of {} bytes written): {}", tmp_path_, n, bytes,
              std::strerror(errno));
}

void AtomicFileWriter::commit() {
  PTUNE_CHECK(file_ != nullptr, "{} was already committed", path_);
  std::FILE* f = file_;
  file_ = nullptr;
  const bool flushed = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  const int flush_errno = errno;
  const bool closed = std::fclose(f) == 0;
  if (!flushed || !closed) {
    std::remove(tmp_path_.c_str());
    PTUNE_FAIL("cannot write {}: {}", tmp_path_, std::strerror(flushed ? errno : flush_errno));
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp_path_.c_str());
    PTUNE_FAIL("cannot rename {} to {}: {}", tmp_path_, path_, std::strerror(e));
  }
}

}  // namespace ptune::io
