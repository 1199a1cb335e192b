// Whole-file writes that a reader, or a crash, sees complete or not at all: the bytes go to a
// temporary beside the target, which is then renamed over it (atomic within one POSIX file system).
// A write that fails (a full disk, a file size limit) ends in one error naming the target, and the
// temporary is removed. Header-only, like error.h, so that the LibTorch-free libraries (results/,
// cluster/) share it.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "runtime/base/error.h"

namespace lopa {

// Renames a finished temporary over `path`; the error names both.
inline void replace_file(const std::string& tmp, const std::string& path) {
  LOPA_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot replace it with ", tmp, ": ",
             std::strerror(errno));
}

// fsync of the directory holding `path`, so that a rename into it survives a power loss.
inline void sync_parent_dir(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: the file itself is synced
  ::fsync(fd);
  ::close(fd);
}

// A file written piecewise to PATH + tmp_suffix and renamed over PATH by commit(). Destroyed without
// a commit (an exception on the way), it removes the temporary. Write errors are kept, not thrown,
// so that it can sit under writers that must not throw (LibTorch's archive writer aborts the process
// when an exception leaves its callback); commit() reports the first one.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path, const std::string& tmp_suffix = ".tmp")
      : path_(std::move(path)), tmp_(path_ + tmp_suffix) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    LOPA_CHECK(fd_ >= 0, tmp_, ": cannot create: ", std::strerror(errno));
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() { discard(); }

  // Appends `n` bytes; false once a write has failed (the rest is then skipped).
  bool write(const void* data, size_t n) {
    if (errno_ != 0) return false;
    const char* p = static_cast<const char*>(data);
    size_t off = 0;
    while (off < n) {
      const ssize_t w = ::write(fd_, p + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        errno_ = w < 0 ? errno : ENOSPC;
        return false;
      }
      off += static_cast<size_t>(w);
    }
    return true;
  }
  bool write(std::string_view bytes) { return write(bytes.data(), bytes.size()); }

  // Publishes the file: throws "PATH: write failed (reason)" after any failed write, close or fsync
  // (the temporary is removed then). durable: fsync the file and its directory, so that the new
  // contents survive a power loss, not only a crash.
  void commit(bool durable = false) {
    LOPA_CHECK(fd_ >= 0, path_, ": already committed");
    if (errno_ == 0 && durable && ::fsync(fd_) != 0) errno_ = errno;
    // close() reports errors that writes deferred (NFS, quotas).
    if (::close(fd_) != 0 && errno_ == 0) errno_ = errno;
    fd_ = -1;
    if (errno_ != 0) {
      ::unlink(tmp_.c_str());
      discarded_ = true;
      fail(path_, ": write failed (", std::strerror(errno_), ")");
    }
    try {
      replace_file(tmp_, path_);
    } catch (...) {
      ::unlink(tmp_.c_str());
      discarded_ = true;
      throw;
    }
    committed_ = true;
    if (durable) sync_parent_dir(path_);
  }

  // Closes and removes the temporary (idempotent; a no-op after commit).
  void discard() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (!committed_ && !discarded_) ::unlink(tmp_.c_str());
    discarded_ = true;
  }

  const std::string& path() const { return path_; }
  const std::string& tmp_path() const { return tmp_; }
  bool failed() const { return errno_ != 0; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  int errno_ = 0;
  bool committed_ = false, discarded_ = false;
};

// Writes `bytes` to path + tmp_suffix, then replaces `path` with it. durable: fsync before the rename,
// so the new contents survive a power loss, not only a crash. Writers that may race on one path (two
// processes judging one sweep cell) give each a distinct tmp_suffix.
inline void write_file_atomic(const std::string& path, std::string_view bytes, bool durable = false,
                              const std::string& tmp_suffix = ".tmp") {
  AtomicFile f(path, tmp_suffix);
  f.write(bytes);
  f.commit(durable);
}

}  // namespace lopa
