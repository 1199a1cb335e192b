// Whole-file writes that a reader, or a crash, sees complete or not at all: the bytes go to a
// temporary beside the target, which is then renamed over it (atomic within one POSIX file system).
// Header-only, like error.h, so that the LibTorch-free libraries (results/, cluster/) share it.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "runtime/base/error.h"

namespace lopa {

// Renames a finished temporary over `path`; the error names both.
inline void replace_file(const std::string& tmp, const std::string& path) {
  LOPA_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot replace it with ", tmp, ": ",
             std::strerror(errno));
}

// Writes `bytes` to path + tmp_suffix, then replaces `path` with it. durable: fsync before the rename,
// so the new contents survive a power loss, not only a crash. Writers that may race on one path (two
// processes judging one sweep cell) give each a distinct tmp_suffix.
inline void write_file_atomic(const std::string& path, std::string_view bytes, bool durable = false,
                              const std::string& tmp_suffix = ".tmp") {
  const std::string tmp = path + tmp_suffix;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  LOPA_CHECK(fd >= 0, tmp, ": cannot create: ", std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());  // a full disk must not also keep half a copy around
      fail(tmp, ": write failed: ", std::strerror(err));
    }
    off += static_cast<size_t>(w);
  }
  if (durable) ::fsync(fd);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(tmp, ": close failed: ", std::strerror(err));
  }
  try {
    replace_file(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace lopa
