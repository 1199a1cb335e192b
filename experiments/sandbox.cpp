#include "experiments/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "runtime/error.h"

namespace lopa {

namespace {

// Uid slots of this process: a running program owns one slot, so no two concurrent programs share a
// uid (and an RLIMIT_NPROC budget). Process-wide because uids are a per-process resource.
constexpr int kSlots = 256;
std::mutex g_slot_mutex;
bool g_slot_used[kSlots] = {};

int acquire_slot() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(g_slot_mutex);
      for (int i = 0; i < kSlots; ++i)
        if (!g_slot_used[i]) {
          g_slot_used[i] = true;
          return i;
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void release_slot(int s) {
  std::lock_guard<std::mutex> lock(g_slot_mutex);
  g_slot_used[s] = false;
}

uid_t slot_uid(int slot) { return (uid_t)(1000000000u + 256u * ((uint32_t)getpid() % 4000000u) + (uint32_t)slot); }

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  ::remove(path);
  return 0;
}

void remove_tree(const std::string& dir) { nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

// Live (non-zombie) processes owned by `uid` right now.
int64_t count_processes_of(uid_t uid) {
  int64_t n = 0;
  DIR* d = opendir("/proc");
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    struct stat st;
    const std::string proc = std::string("/proc/") + e->d_name;
    if (::stat(proc.c_str(), &st) != 0 || st.st_uid != uid) continue;
    // Zombies hold no resources; they wait for the host's init to reap them (the sandbox's own init is
    // reparented there), which may take a while.
    std::ifstream in(proc + "/stat");
    std::string line;
    std::getline(in, line);
    const size_t paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && (line[paren + 2] == 'Z' || line[paren + 2] == 'X'))
      continue;
    ++n;
  }
  closedir(d);
  return n;
}

// Kills every process running as `uid` (from a helper that takes that uid) until /proc shows none.
// (kill(-1) cannot tell: it succeeds whenever any process exists, signalled or not.)
void kill_all_of(uid_t uid) {
  for (int round = 0; round < 1000 && count_processes_of(uid) > 0; ++round) {
    pid_t h = fork();
    if (h == 0) {
      if (setgid(uid) != 0 || setuid(uid) != 0) _exit(1);
      kill(-1, SIGKILL);
      _exit(0);
    }
    if (h > 0) {
      int st;
      while (waitpid(h, &st, 0) < 0 && errno == EINTR) {
      }
    }
    struct timespec ts {0, 2 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
}

void set_limit(int resource, int64_t v) {
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)v;
  setrlimit(resource, &rl);
}

}  // namespace

Sandbox::Sandbox(SandboxOptions opts) : opts_(std::move(opts)) {
  workers_ = opts_.workers > 0 ? opts_.workers : (int)std::max(1u, std::thread::hardware_concurrency());
  workers_ = std::min(workers_, kSlots);
  LOPA_CHECK(access(opts_.python.c_str(), X_OK) == 0, "sandbox: python interpreter ", opts_.python, " not found");
  std::string why;
  if (access(opts_.bwrap.c_str(), X_OK) != 0) {
    why = "bubblewrap (" + opts_.bwrap + ") is not installed (Debian package bubblewrap)";
  } else {
    // Self-test: a trivial program must run and print through the sandbox.
    ExecResult r = run_mode("print(6 * 7)\n", true);
    if (!r.passed || r.out != "42\n")
      why = "bubblewrap (" + opts_.bwrap + ") failed its self-test (status " + r.status + ": " +
            r.err.substr(0, 300) + ")";
  }
  if (why.empty()) {
    sandboxed_ = true;
    description_ = "bubblewrap: user/net/pid/ipc/uts namespaces, read-only root, private /tmp";
    return;
  }
  for (char& c : why)
    if (c == '\n') c = ' ';
  LOPA_CHECK(opts_.unsafe_exec, "sandbox: ", why,
             "; refusing to execute model-written code without a sandbox (pass --unsafe-exec to run it anyway)");
  sandboxed_ = false;
  description_ = "UNSAFE: no sandbox (" + why + ")";
  std::cerr << "sandbox: WARNING: " << why << "; running model-written code WITHOUT a sandbox because unsafe-exec "
            << "was given (rlimits and timeouts still apply)" << std::endl;
}

ExecResult Sandbox::run(const std::string& program) const {
  if (!sandboxed_ && !opts_.unsafe_exec) fail("sandbox: no sandbox available and unsafe-exec not set");
  return run_mode(program, sandboxed_);
}

std::vector<ExecResult> Sandbox::run_all(const std::vector<std::string>& programs) const {
  std::vector<ExecResult> results(programs.size());
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= programs.size()) return;
      try {
        results[i] = run(programs[i]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  const int n = std::max(1, std::min<int>(workers_, (int)programs.size()));
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  return results;
}

ExecResult Sandbox::run_mode(const std::string& program, bool use_bwrap) const {
  const SandboxLimits& L = opts_.limits;
  ExecResult res;
  const auto t0 = std::chrono::steady_clock::now();

  // The program's host directory: holds program.py only (read-only inside the sandbox).
  const char* tmp_env = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp_env && *tmp_env ? tmp_env : "/tmp") + "/lopa-sandbox-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  LOPA_CHECK(mkdtemp(buf.data()) != nullptr, "sandbox: cannot create a temp dir from ", tmpl, ": ", std::strerror(errno));
  const std::string dir = buf.data();
  const std::string file = dir + "/program.py";
  {
    std::ofstream out(file, std::ios::binary);
    out << program;
    if (!out) {
      remove_tree(dir);
      fail("sandbox: cannot write ", file);
    }
  }
  chmod(file.c_str(), 0644);

  const bool root = geteuid() == 0;
  const int slot = acquire_slot();
  const uid_t uid = root ? slot_uid(slot) : geteuid();
  if (root && !use_bwrap) {
    if (chown(dir.c_str(), uid, uid) != 0) {}  // unsafe mode: the program's own writable directory
    chmod(dir.c_str(), 0700);
  } else {
    chmod(dir.c_str(), 0755);
  }
  // Without root every process of the user counts against RLIMIT_NPROC, so the budget starts above them.
  const int64_t nproc = root ? L.processes : count_processes_of(uid) + L.processes * workers_;

  std::vector<std::string> args;
  if (use_bwrap) {
    args = {opts_.bwrap, "--unshare-user", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--disable-userns", "--die-with-parent", "--new-session",
            "--ro-bind", "/", "/", "--dev", "/dev", "--remount-ro", "/dev", "--proc", "/proc",
            "--size", std::to_string(L.tmpfs_bytes), "--tmpfs", "/tmp",
            "--ro-bind", file, "/tmp/program.py", "--chdir", "/tmp",
            "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
            "--setenv", "LANG", "C.UTF-8", "--setenv", "TMPDIR", "/tmp",
            "--", opts_.python, "-I", "-B", "/tmp/program.py"};
  } else {
    args = {opts_.python, "-I", "-B", file};
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string env_path = "PATH=/usr/bin:/bin", env_home = "HOME=" + dir, env_lang = "LANG=C.UTF-8";
  char* envp[] = {env_path.data(), env_home.data(), env_lang.data(), nullptr};

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    release_slot(slot);
    remove_tree(dir);
    fail("sandbox: pipe: ", std::strerror(errno));
  }
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const std::string workdir = use_bwrap ? std::string("/") : dir;

  pid_t pid = fork();
  if (pid == 0) {
    // Child: only async-signal-safe calls until execve.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    signal(SIGPIPE, SIG_DFL);
    dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
      for (int fd = 3; fd < 65536; ++fd) close(fd);
    if (chdir(workdir.c_str()) != 0) _exit(126);
    set_limit(RLIMIT_CPU, L.cpu_seconds);
    set_limit(RLIMIT_AS, L.address_space_bytes);
    set_limit(RLIMIT_FSIZE, L.file_size_bytes);
    set_limit(RLIMIT_NOFILE, L.open_files);
    set_limit(RLIMIT_NPROC, nproc);
    set_limit(RLIMIT_CORE, 0);
    if (root) {
      if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) _exit(125);
    }
    execve(argv[0], argv.data(), envp);
    _exit(127);
  }
  const int fork_errno = errno;
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (devnull >= 0) close(devnull);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    release_slot(slot);
    remove_tree(dir);
    fail("sandbox: fork: ", std::strerror(fork_errno));
  }
  setpgid(pid, pid);  // also from the parent, so killpg works even before the child ran

  const auto deadline = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(L.wall_seconds));
  int fds[2] = {out_pipe[0], err_pipe[0]};
  bool open_fd[2] = {true, true};
  std::string* keep[2] = {&res.out, &res.err};
  int64_t total = 0;
  bool exited = false, killed = false;
  int wstatus = 0;
  char chunk[65536];
  auto kill_group = [&] {
    if (!killed) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      killed = true;
    }
  };
  while (!exited || open_fd[0] || open_fd[1]) {
    if (!exited) {
      pid_t w = waitpid(pid, &wstatus, WNOHANG);
      if (w == pid) exited = true;
    }
    if (exited && killed) break;  // whatever still holds the pipes dies in the sweep below
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline && !killed) {
      res.status = "timeout";
      kill_group();
      if (root) kill_all_of(uid);
      continue;
    }
    struct pollfd pfd[2];
    int np = 0, map[2];
    for (int i = 0; i < 2; ++i)
      if (open_fd[i]) {
        pfd[np] = {fds[i], POLLIN, 0};
        map[np++] = i;
      }
    const int wait_ms = killed ? 10 : (int)std::max<int64_t>(1, std::min<int64_t>(
        50, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()));
    if (np == 0) {
      struct timespec ts {0, 2 * 1000 * 1000};
      nanosleep(&ts, nullptr);
      continue;
    }
    int pr = poll(pfd, np, wait_ms);
    if (pr <= 0) continue;
    for (int k = 0; k < np; ++k) {
      if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const int i = map[k];
      ssize_t n = read(fds[i], chunk, sizeof chunk);
      if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) open_fd[i] = false;
        continue;
      }
      total += n;
      const int64_t room = L.capture_bytes - (int64_t)keep[i]->size();
      if (room > 0) keep[i]->append(chunk, (size_t)std::min<int64_t>(room, n));
      if (room < n) res.truncated = true;
      if (total > L.output_bytes && !killed) {
        res.status = "output_limit";
        res.truncated = true;
        kill_group();
      }
    }
  }
  if (!exited) {
    kill_group();
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
  }
  close(out_pipe[0]);
  close(err_pipe[0]);
  // Nothing the program started may outlive it: kill every process of its uid.
  if (root) kill_all_of(uid);
  release_slot(slot);
  remove_tree(dir);

  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (WIFEXITED(wstatus)) res.exit_code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) res.term_signal = WTERMSIG(wstatus);
  if (res.status.empty()) {
    if (WIFEXITED(wstatus) && res.exit_code == 0) res.status = "passed";
    else if (WIFEXITED(wstatus)) res.status = "failed";
    else res.status = "signal";
  }
  res.passed = res.status == "passed";
  return res;
}

}  // namespace lopa
