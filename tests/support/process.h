// Running the lopa binary from tests: a command's stdout and exit status.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace lopa::test {

// stdout of `cmd` (run by /bin/sh); *status gets its exit code (-1 when it did not exit normally).
inline std::string capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  const int rc = p ? pclose(p) : -1;
  *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

}  // namespace lopa::test
