#include "cluster/cell_command.h"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>

#include "cluster/train_keys.h"
#include "runtime/base/error.h"

namespace lopa::cluster {

std::string shell_quote(const std::string& s) {
  bool plain = !s.empty();
  for (char c : s)
    if (!(std::isalnum((unsigned char)c) || std::string("@%_+=:,./-").find(c) != std::string::npos)) plain = false;
  if (plain) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

namespace {

// Calls on_text(literal) and on_name(placeholder) in order.
template <typename Text, typename Name>
void scan_template(const std::string& t, const std::string& where, Text on_text, Name on_name) {
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '{' && i + 1 < t.size() && t[i + 1] == '{') {
      on_text('{');
      ++i;
    } else if (c == '}' && i + 1 < t.size() && t[i + 1] == '}') {
      on_text('}');
      ++i;
    } else if (c == '{') {
      const auto end = t.find('}', i);
      LOPA_CHECK(end != std::string::npos, where, ": unclosed '{' in command '", t, "'");
      on_name(t.substr(i + 1, end - i - 1));
      i = end;
    } else {
      on_text(c);
    }
  }
}

}  // namespace

std::string expand_command(const std::string& tmpl, const std::map<std::string, std::string>& vars,
                           const std::string& where) {
  std::string out;
  scan_template(tmpl, where, [&](char c) { out += c; },
                [&](const std::string& name) {
                  auto it = vars.find(name);
                  LOPA_CHECK(it != vars.end(), where, ": unknown placeholder {", name, "} in command '", tmpl, "'");
                  out += name == "launch" ? it->second : shell_quote(it->second);
                });
  return out;
}

void check_command_template(const std::string& tmpl, const std::string& allowed_csv, const std::string& where) {
  std::map<std::string, std::string> vars;
  for (const auto& n : split_list(allowed_csv)) vars[n] = "x";
  expand_command(tmpl, vars, where + " (placeholders: {" + allowed_csv + "})");
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

std::string lopa_program(const std::string& configured) {
  if (!configured.empty()) return std::filesystem::absolute(configured).lexically_normal().string();
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  LOPA_CHECK(!ec, "/proc/self/exe: cannot find the lopa program (set [launch] lopa)");
  return self.string();
}

int run_capture(const std::string& command, std::string& out) {
  out.clear();
  FILE* p = popen(command.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  if (st == -1) return -1;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

bool have_program(const std::string& program) {
  if (program.find('/') != std::string::npos) return access(program.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  if (!path) return false;
  for (const auto& dir : split_list(path, ':'))
    if (!dir.empty() && access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  return false;
}

std::string hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace lopa::cluster
