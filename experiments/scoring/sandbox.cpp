#include "experiments/scoring/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "runtime/base/error.h"

namespace lopa {

namespace {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC, as the supervisor's clock_gettime below

constexpr int kSlots = 256;
constexpr uint32_t kUidBase = 1000000000u;

// The program's file descriptors for the pass proof (see sandbox.h): the token to read, then the
// channel to report it on.
constexpr int kTokenFd = 4, kReportFd = 5;
constexpr size_t kTokenChars = 32;

// The harness, run as `python -I -B -c HARNESS PROGRAM_FILE`. It reads the token from fd 4 and closes
// it, so the token is in no file, argument or environment variable the program can see. The token is
// then only a bytes constant of a code object compiled here (`h`), and that code object is reachable
// only through the f_code of the frame that runs it: the audit hook refuses that attribute for it
// (sys._getframe, tracebacks and generators give frames, f_back leads up to it). h runs the program in
// a fresh __main__ module and, only if the program's code returned (every statement ran: no exception,
// no sys.exit, os._exit, signal or exec), writes the token to fd 5. The hook also refuses what would
// read the token another way or skip statements: tracing and profiling (a trace function can jump
// over lines), ctypes and native modules from outside the interpreter's prefixes (raw memory),
// gc.get_objects/referrers/referents, /proc (its mem and fd files), starting other programs (they
// would not carry the hook) and subinterpreters.
constexpr const char* kHarness = R"PY(import sys
def _lopa_harness():
    import os
    t = os.read(4, 64)
    os.close(4)
    if len(t) != 32 or not t.isalnum():
        raise SystemExit('sandbox harness: no token on fd 4')
    p = sys.argv[1]
    with open(p, 'rb') as f:
        c = compile(f.read(), p, 'exec', dont_inherit=True)
    m = type(sys)('__main__')
    m.__file__ = p
    sys.modules['__main__'] = m
    sys.argv = [p]
    g = {'__builtins__': __builtins__, 'c': c, 'm': m.__dict__, 'w': os.write}
    h = compile('exec(c, m)\nw(5, b"' + t.decode() + '")\n', '<harness>', 'exec')
    del t
    rp = os.path.realpath
    roots = tuple(sorted({rp(x) + os.sep for x in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, '/usr')}))
    deny_ev = ('ctypes.', 'gc.get_', 'sys.settrace', 'sys.setprofile', 'os.exec', 'os.posix_spawn', 'os.spawn',
               'os.system', 'os.forkpty', 'pty.', 'subprocess.', 'cpython.PyInterpreterState_New',
               'cpython._PySys_ClearAuditHooks')
    deny_mod = frozenset(('ctypes', '_ctypes', '_posixsubprocess', '_xxsubinterpreters', '_xxinterpchannels',
                          '_testcapi', '_testinternalcapi', '_testmultiphase', '_testsinglephase'))
    def hook(ev, a):
        if ev == 'object.__getattr__':
            if a[1] == 'f_code' and getattr(a[0], 'f_globals', None) is g:
                raise RuntimeError('sandbox: the harness frame is off limits')
        elif ev == 'open':
            if isinstance(a[0], (str, bytes)):
                q = rp(os.fsdecode(a[0]))
                if q == '/proc' or q.startswith('/proc/'):
                    raise PermissionError('sandbox: /proc is off limits')
        elif ev == 'import':
            if a[0].partition('.')[0] in deny_mod:
                raise ImportError('sandbox: module ' + a[0] + ' is not available')
            if a[1] is not None and not rp(os.fsdecode(a[1])).startswith(roots):
                raise ImportError('sandbox: native module ' + a[0] + ' from outside the interpreter')
        elif ev.startswith(deny_ev):
            raise PermissionError('sandbox: ' + ev + ' is not allowed')
    sys.addaudithook(hook)
    return h, g
exec(*_lopa_harness())
)PY";

// A fresh random token (hex) per program: what the harness prints when, and only when, the program ran
// to its end.
std::string random_token() {
  unsigned char b[kTokenChars / 2];
  size_t got = 0;
  while (got < sizeof b) {
    const ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n < 0 && errno == EINTR) continue;
    LOPA_CHECK(n > 0, "sandbox: getrandom: ", std::strerror(errno));
    got += (size_t)n;
  }
  static const char* hex = "0123456789abcdef";
  std::string t;
  for (unsigned char c : b) t += hex[c >> 4], t += hex[c & 15];
  return t;
}

uint32_t first_uid() { return kUidBase + 256u * ((uint32_t)getpid() % 4000000u); }
uid_t slot_uid(int slot) { return (uid_t)(first_uid() + (uint32_t)slot); }

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  ::remove(path);
  return 0;
}

void remove_tree(const std::string& dir) { nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

// Processes, zombies included, whose real, effective or saved uid is `uid`. Zombies matter: they
// count against RLIMIT_NPROC of their uid until someone reaps them.
int64_t count_processes_of(uid_t uid) {
  int64_t n = 0;
  DIR* d = opendir("/proc");
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Uid:", 0) != 0) continue;
      unsigned long r = 0, ef = 0, sv = 0;
      if (std::sscanf(line.c_str() + 4, "%lu %lu %lu", &r, &ef, &sv) == 3 && (r == uid || ef == uid || sv == uid)) ++n;
      break;
    }
  }
  closedir(d);
  return n;
}

// User + system CPU seconds of `root` and its descendants now, reaped children's included (the
// /proc/PID/stat fields utime, stime, cutime, cstime after "(comm) state ppid").
double subtree_cpu_seconds(pid_t root) {
  std::unordered_map<pid_t, std::vector<pid_t>> children;
  std::unordered_map<pid_t, double> ticks;
  DIR* d = opendir("/proc");
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    std::getline(in, line);
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(line.substr(paren + 1));
    std::string field;
    long ppid = 0;
    double t = 0;
    for (int k = 3; k <= 17 && rest >> field; ++k) {
      if (k == 4) ppid = std::atol(field.c_str());
      if (k >= 14) t += std::atof(field.c_str());
    }
    const pid_t pid = (pid_t)std::atol(e->d_name);
    children[(pid_t)ppid].push_back(pid);
    ticks[pid] = t;
  }
  closedir(d);
  double sum = 0;
  std::vector<pid_t> todo = {root};
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    sum += ticks[p];
    for (pid_t c : children[p]) todo.push_back(c);
  }
  return sum / (double)sysconf(_SC_CLK_TCK);
}

// Uid slots of this process: a running program owns one slot, so no two concurrent programs share a
// uid (and an RLIMIT_NPROC budget). Process-wide because uids are a per-process resource. As root, a
// slot is first handed out only once /proc shows no process of its uid (another program, e.g. an
// earlier run whose pid had the same residue, may have left some behind); after that the supervisor
// guarantees it is empty whenever it is released.
struct SlotTable {
  std::mutex mutex;
  pid_t owner = 0;  // the uids depend on the pid: a forked copy of the table starts afresh
  bool used[kSlots] = {};
  bool verified[kSlots] = {};
  Clock::time_point recheck[kSlots] = {};
};

SlotTable& slots() {
  static SlotTable t;
  return t;
}

int acquire_slot(bool root) {
  SlotTable& t = slots();
  const auto give_up = Clock::now() + std::chrono::seconds(120);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(t.mutex);
      const auto now = Clock::now();
      if (t.owner != getpid()) {
        for (int i = 0; i < kSlots; ++i) t.used[i] = t.verified[i] = false, t.recheck[i] = {};
        t.owner = getpid();
      }
      for (int pass = 0; pass < 2; ++pass)  // verified slots first: they need no /proc scan
        for (int i = 0; i < kSlots; ++i) {
          if (t.used[i] || t.verified[i] != (pass == 0)) continue;
          if (root && !t.verified[i]) {
            if (now < t.recheck[i]) continue;
            if (count_processes_of(slot_uid(i)) > 0) {
              t.recheck[i] = now + std::chrono::seconds(1);
              continue;
            }
            t.verified[i] = true;
          }
          t.used[i] = true;
          return i;
        }
    }
    LOPA_CHECK(Clock::now() < give_up, "sandbox: no uid in ", first_uid(), "..", first_uid() + kSlots - 1,
               " is free of processes (zombies of an earlier run that nobody reaps?)");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void release_slot(int s) {
  std::lock_guard<std::mutex> lock(slots().mutex);
  slots().used[s] = false;
}

// ---- Code that runs in the supervisor and the program's process, between fork and execve/_exit:
// the evaluator is multi-threaded, so only raw system calls (no allocation, no locks, no stdio). The
// supervisor starts its own children with vfork: they share its memory until they exec or exit, so
// the evaluator's page tables (gigabytes with a model loaded) are copied once per sample, not again
// for the program and for each kill helper.

bool become(uid_t uid) {
  return syscall(SYS_setgroups, 0, nullptr) == 0 && syscall(SYS_setresgid, uid, uid, uid) == 0 &&
         syscall(SYS_setresuid, uid, uid, uid) == 0;
}

int64_t mono_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// Closes every descriptor but `keep` (the supervisor inherits the evaluator's whole table, including
// other workers' pipe ends, which must not stay open for the lifetime of this sample).
void close_other_fds(int* keep, int n) {
  for (int i = 1; i < n; ++i)
    for (int j = i; j > 0 && keep[j - 1] > keep[j]; --j) std::swap(keep[j - 1], keep[j]);
  unsigned lo = 0;
  for (int i = 0; i <= n; ++i) {
    const unsigned hi = i < n ? (unsigned)keep[i] : ~0u;  // close [lo, hi)
    if (i < n && keep[i] < 0) continue;
    if (hi > lo && syscall(SYS_close_range, lo, i < n ? hi - 1 : ~0u, 0u) != 0)
      for (unsigned fd = lo; fd < std::min(hi, 65536u); ++fd) close((int)fd);
    if (i < n) lo = (unsigned)keep[i] + 1;
  }
}

void set_limit(int resource, int64_t v) {
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)v;
  setrlimit(resource, &rl);
}

// SIGKILL to every child of the calling process, found in /proc (pid then "(comm) S ppid").
void kill_children_of_self() {
  const pid_t self = getpid();
  const int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  char buf[8192];
  for (;;) {
    const long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      const char* rec = buf + off;
      unsigned short reclen;
      std::memcpy(&reclen, rec + 16, sizeof reclen);  // struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name
      const char* name = rec + 19;
      off += reclen;
      if (name[0] < '1' || name[0] > '9') continue;
      char path[64] = "/proc/";
      size_t p = 6;
      for (const char* c = name; *c && p < 50; ++c) path[p++] = *c;
      std::memcpy(path + p, "/stat", 6);
      const int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      char st[512];
      const ssize_t r = read(fd, st, sizeof st - 1);
      close(fd);
      if (r <= 0) continue;
      st[r] = '\0';
      const char* paren = nullptr;  // comm may contain ") ", so the last one ends it
      for (ssize_t i = 0; i < r; ++i)
        if (st[i] == ')') paren = st + i;
      if (!paren || paren + 4 >= st + r) continue;
      long ppid = 0;
      for (const char* c = paren + 4; *c >= '0' && *c <= '9'; ++c) ppid = ppid * 10 + (*c - '0');
      if (ppid != self) continue;
      long pid = 0;
      for (const char* c = name; *c >= '0' && *c <= '9'; ++c) pid = pid * 10 + (*c - '0');
      kill((pid_t)pid, SIGKILL);  // our child: its pid cannot be reused before we reap it
    }
  }
  close(dfd);
}

// Everything the supervisor and the program's process need, prepared before fork.
struct Launch {
  char** argv;
  char** envp;
  const char* workdir;
  const SandboxLimits* limits;
  int64_t nproc;
  bool root;
  bool use_bwrap;
  uid_t uid;
  pid_t evaluator;
  int devnull, out_w, err_w, start_w, ctl_r, status_w;  // the supervisor's ends of the pipes
  int token_r, report_w;  // the program's ends of the proof pipes (fds 4 and 5 of the program)
};

// What the supervisor reports when it exits.
struct Report {
  int32_t launched = 0;    // the program's process was forked
  int32_t fork_errno = 0;
  int32_t wait_status = 0; // of the program's process (the outer bwrap: it exits with the program's status)
  int32_t pad = 0;
  int64_t end_ns = 0;      // CLOCK_MONOTONIC when it was reaped
  int64_t cpu_us = 0;      // CPU of everything the supervisor reaped
};

// The program's process: stdio, rlimits, the sandbox uid, then bwrap (or python). fd 3 is the
// start pipe: under bwrap, `sh` inside the sandbox writes one byte to it and closes it just before it
// execs python, so the evaluator sees when the program itself starts; without bwrap, this process
// writes it and execve closes it (close-on-exec). fds 4 and 5 are the harness's token and report
// pipes, passed on through bwrap and sh to python.
[[noreturn]] void exec_program(const Launch& a, pid_t supervisor) {
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  dup2(a.devnull, 0);
  dup2(a.out_w, 1);
  dup2(a.err_w, 2);
  // Out of the way of 3..5 first (a source may sit on another's target), then into place; dup2 clears
  // close-on-exec, so bwrap passes them on.
  const int start = fcntl(a.start_w, F_DUPFD_CLOEXEC, 16), token = fcntl(a.token_r, F_DUPFD_CLOEXEC, 16),
            report = fcntl(a.report_w, F_DUPFD_CLOEXEC, 16);
  if (start < 0 || token < 0 || report < 0) _exit(126);
  if (a.use_bwrap) dup2(start, 3);
  else dup3(start, 3, O_CLOEXEC);
  dup2(token, kTokenFd);
  dup2(report, kReportFd);
  if (syscall(SYS_close_range, 6u, ~0u, 0u) != 0)
    for (int fd = 6; fd < 65536; ++fd) close(fd);
  if (chdir(a.workdir) != 0) _exit(126);
  const SandboxLimits& L = *a.limits;
  set_limit(RLIMIT_CPU, L.cpu_seconds);
  set_limit(RLIMIT_AS, L.address_space_bytes);
  set_limit(RLIMIT_FSIZE, L.file_size_bytes);
  set_limit(RLIMIT_NOFILE, L.open_files);
  set_limit(RLIMIT_NPROC, a.nproc);
  set_limit(RLIMIT_CORE, 0);
  if (a.root && !become(a.uid)) _exit(125);
  // After the uid change, which clears it; the supervisor is single-threaded, so "parent" is it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != supervisor) _exit(125);
  if (!a.use_bwrap && write(3, "s", 1) != 1) _exit(125);
  execve(a.argv[0], a.argv, a.envp);
  _exit(127);
}

// Kills what is left of the sample: the program's process group while it is unreaped (under bwrap
// this takes the whole pid namespace down: its pid 1 dies with its parent), every process of the
// sample's uid (as root), and every child of the supervisor (orphans land here: it is a subreaper).
// The /proc scan for the latter is left out as root under bubblewrap, where every such child runs
// as the sample's uid.
void kill_sample(const Launch& a, pid_t program, bool program_reaped) {
  if (!program_reaped) {
    kill(-program, SIGKILL);
    kill(program, SIGKILL);
  }
  if (a.root) {
    const pid_t h = vfork();
    if (h == 0) {
      if (become(a.uid)) kill(-1, SIGKILL);  // all processes of the uid (not the caller itself)
      _exit(0);
    }
    if (h > 0) {
      int st;
      while (waitpid(h, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  if (!a.root || !a.use_bwrap) kill_children_of_self();
}

// The supervisor: a subreaper (PR_SET_CHILD_SUBREAPER) per program. It reaps with waitpid(-1)
// because every child it can ever have is the program's process or an orphan of the sample: that
// is why the subreaper is this per-program process and not the evaluator, whose other children
// (e.g. the local executor's mpirun) it must never reap. It exits only when it has no child left.
[[noreturn]] void supervise(const Launch& a) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != a.evaluator) _exit(1);
  int keep[] = {0, 1, 2, a.devnull, a.out_w, a.err_w, a.start_w, a.ctl_r, a.status_w, a.token_r, a.report_w};
  close_other_fds(keep, (int)(sizeof keep / sizeof keep[0]));
  // Every signal is blocked (the evaluator blocked them around fork): SIGCHLD arrives on a signalfd.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  const int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  Report rep;
  const pid_t self = getpid();
  const pid_t program = vfork();
  if (program == 0) exec_program(a, self);
  rep.fork_errno = program < 0 ? errno : 0;
  if (program > 0) setpgid(program, program);  // also from here, so kill(-program) works at once
  close(a.out_w);
  close(a.err_w);
  close(a.start_w);
  close(a.token_r);
  close(a.report_w);
  close(a.devnull);
  if (program > 0) {
    rep.launched = 1;
    bool reaped = false, kill_requested = false;
    for (;;) {
      bool none_left = false;
      for (;;) {
        int st = 0;
        const pid_t w = waitpid(-1, &st, WNOHANG);
        if (w > 0) {
          if (w == program) {
            reaped = true;
            rep.wait_status = st;
            rep.end_ns = mono_ns();
          }
          continue;
        }
        if (w < 0 && errno == EINTR) continue;
        none_left = w < 0 && errno == ECHILD;
        break;
      }
      if (none_left) break;
      // Once the program has ended, or the evaluator asks (timeout, output cap, or its own death:
      // end of file on the control pipe), nothing of the sample may go on running.
      const bool killing = reaped || kill_requested;
      if (killing) kill_sample(a, program, reaped);
      struct pollfd fds[2] = {{sfd, POLLIN, 0}, {a.ctl_r, POLLIN, 0}};
      poll(fds, kill_requested ? 1 : 2, killing ? 5 : sfd < 0 ? 10 : -1);
      if (fds[0].revents & POLLIN) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) > 0) {
        }
      }
      if (!kill_requested && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        char b;
        if (read(a.ctl_r, &b, 1) >= 0) kill_requested = true;  // a byte, or end of file
      }
    }
  }
  struct rusage ru;
  if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
    rep.cpu_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec + (int64_t)ru.ru_stime.tv_sec * 1000000 +
                 ru.ru_stime.tv_usec;
  ssize_t w;
  do w = write(a.status_w, &rep, sizeof rep);
  while (w < 0 && errno == EINTR);
  _exit(0);
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// The read-only mounts of everything the interpreter needs, and nothing else of the host: /usr, the
// root-level links into it (or the directories, without merged /usr), the interpreter's prefixes when
// they are not under /usr (the directory `python` is in, e.g. a venv, and where it resolves to), and a
// minimal /etc. Not the data root, run directories, home or the host's /tmp.
std::vector<std::string> interpreter_mounts(const std::string& python) {
  namespace fs = std::filesystem;
  std::vector<std::string> m = {"--ro-bind", "/usr", "/usr"};
  const auto add = [&](std::initializer_list<std::string> args) { m.insert(m.end(), args); };
  for (const char* d : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code ec;
    const auto st = fs::symlink_status(d, ec);
    if (ec || !fs::exists(st)) continue;
    if (fs::is_symlink(st)) {
      const auto target = fs::read_symlink(d, ec);
      if (!ec) add({"--symlink", target.string(), d});
    } else if (fs::is_directory(st)) {
      add({"--ro-bind", d, d});
    }
  }
  std::vector<std::string> prefixes;
  std::error_code ec;
  for (const fs::path& p : {fs::path(python), fs::weakly_canonical(fs::path(python), ec)}) {
    const std::string prefix = p.parent_path().parent_path().lexically_normal().string();  // PREFIX/bin/python
    if (prefix.empty() || prefix == "/" || prefix == "/usr" || prefix.rfind("/usr/", 0) == 0) continue;
    if (std::find(prefixes.begin(), prefixes.end(), prefix) == prefixes.end()) prefixes.push_back(prefix);
  }
  for (const auto& p : prefixes) add({"--ro-bind", p, p});
  for (const char* f : {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives"})
    add({"--ro-bind-try", f, f});
  return m;
}

}  // namespace

std::pair<uint32_t, uint32_t> sandbox_uid_range() { return {first_uid(), (uint32_t)kSlots}; }

Sandbox::Sandbox(SandboxOptions opts) : opts_(std::move(opts)) {
  workers_ = opts_.workers > 0 ? opts_.workers : (int)std::max(1u, std::thread::hardware_concurrency());
  workers_ = std::min(workers_, kSlots);
  LOPA_CHECK(access(opts_.python.c_str(), X_OK) == 0, "sandbox: python interpreter ", opts_.python, " not found");
  mounts_ = interpreter_mounts(opts_.python);
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
    description_ = "bubblewrap: user/net/pid/ipc/uts namespaces, only the interpreter's files (read-only), private "
                   "/tmp; a pass is proven by the harness";
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
  const auto t0 = Clock::now();

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
  int slot = -1;
  try {
    slot = acquire_slot(root);
  } catch (...) {
    remove_tree(dir);
    throw;
  }
  const uid_t uid = root ? slot_uid(slot) : geteuid();
  if (root && !use_bwrap) {
    if (chown(dir.c_str(), uid, uid) != 0) {}  // unsafe mode: the program's own writable directory
    chmod(dir.c_str(), 0700);
  } else {
    chmod(dir.c_str(), 0755);
  }
  // Without root every process of the user (zombies included) counts against RLIMIT_NPROC, so the
  // budget starts above them; each running sample adds its supervisor.
  const int64_t nproc = root ? L.processes : count_processes_of(uid) + (L.processes + 1) * workers_;

  std::vector<std::string> args;
  if (use_bwrap) {
    args = {opts_.bwrap, "--unshare-user", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--disable-userns", "--die-with-parent", "--new-session"};
    args.insert(args.end(), mounts_.begin(), mounts_.end());
    const std::vector<std::string> rest = {
        "--dev", "/dev", "--remount-ro", "/dev", "--proc", "/proc",
        "--size", std::to_string(L.tmpfs_bytes), "--tmpfs", "/tmp",
        "--ro-bind", file, "/tmp/program.py", "--chdir", "/tmp",
        // The root (bubblewrap's own tmpfs, holding only the mount points) read-only: nothing but /tmp,
        // whose size is capped, is writable.
        "--remount-ro", "/",
        "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
        "--setenv", "LANG", "C.UTF-8", "--setenv", "TMPDIR", "/tmp",
        // Set-up is done once this shell runs: it reports the start on fd 3, closes it, and
        // becomes the interpreter.
        "--", "/bin/sh", "-c", "printf s >&3 && exec 3>&- && exec \"$0\" \"$@\"",
        opts_.python, "-I", "-B", "-c", kHarness, "/tmp/program.py"};
    args.insert(args.end(), rest.begin(), rest.end());
  } else {
    args = {opts_.python, "-I", "-B", "-c", kHarness, file};
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string env_path = "PATH=/usr/bin:/bin", env_home = "HOME=" + dir, env_lang = "LANG=C.UTF-8";
  char* envp[] = {env_path.data(), env_home.data(), env_lang.data(), nullptr};
  const std::string workdir = use_bwrap ? std::string("/") : dir;

  int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, start_p[2] = {-1, -1}, ctl_p[2] = {-1, -1}, status_p[2] = {-1, -1};
  int token_p[2] = {-1, -1}, report_p[2] = {-1, -1};
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto close_all = [&] {
    for (int* p : {out_p, err_p, start_p, ctl_p, status_p, token_p, report_p}) close_fd(p[0]), close_fd(p[1]);
    close_fd(devnull);
  };
  for (int* p : {out_p, err_p, start_p, ctl_p, status_p, token_p, report_p})
    if (pipe2(p, O_CLOEXEC) != 0) {
      const int e = errno;
      close_all();
      release_slot(slot);
      remove_tree(dir);
      fail("sandbox: pipe: ", std::strerror(e));
    }
  // The token waits in its pipe (far below the pipe's capacity); the write end closes before the fork,
  // so nothing but the program's fd 4 ever holds it.
  const std::string token = random_token();
  const bool token_written = write(token_p[1], token.data(), token.size()) == (ssize_t)token.size();
  close_fd(token_p[1]);
  if (!token_written) {
    const int e = errno;
    close_all();
    release_slot(slot);
    remove_tree(dir);
    fail("sandbox: writing the harness token: ", std::strerror(e));
  }
  Launch a{argv.data(), envp, workdir.c_str(), &L, nproc, root, use_bwrap, uid, getpid(),
           devnull, out_p[1], err_p[1], start_p[1], ctl_p[0], status_p[1], token_p[0], report_p[1]};

  // Signals stay blocked in the supervisor (it takes SIGCHLD from a signalfd); this thread gets its
  // mask back right after the fork.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t sup = fork();
  if (sup == 0) supervise(a);
  const int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  for (int* fd : {&out_p[1], &err_p[1], &start_p[1], &ctl_p[0], &status_p[1], &token_p[0], &report_p[1], &devnull})
    close_fd(*fd);
  if (sup < 0) {
    close_all();
    release_slot(slot);
    remove_tree(dir);
    fail("sandbox: fork: ", std::strerror(fork_errno));
  }

  int fds[2] = {out_p[0], err_p[0]};
  bool open_fd[2] = {true, true};
  std::string* keep[2] = {&res.out, &res.err};
  int64_t total = 0;
  bool started = false, start_open = true, status_open = true, have_report = false, proof_open = true;
  std::string proof;  // what arrived on the program's fd 5 (the first 4 KiB)
  Report rep;
  size_t rep_got = 0;
  Clock::time_point t_start{};
  auto after = [](Clock::time_point t, double seconds) {
    return t + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  };
  const auto setup_deadline = after(t0, L.setup_seconds);
  Clock::time_point run_deadline = Clock::time_point::max();
  // Past the wall-clock deadline a sample goes on only while it is computing (its CPU time grew by at
  // least kMinShare of the last probe window) and within its CPU budget: on a loaded machine a
  // correct but slow program gets its CPU time, which does not depend on the load, while one that
  // sleeps or blocks is stopped at the deadline.
  constexpr double kMinShare = 0.05;
  const auto window = std::chrono::seconds(1);
  Clock::time_point probe_at = Clock::time_point::max(), probe_t{}, killed_at = Clock::time_point::max();
  double probe_cpu = -1, cpu_seen = 0;
  std::string kill_reason, note;
  auto request_kill = [&](const std::string& why) {
    if (!kill_reason.empty()) return;
    kill_reason = why;
    killed_at = Clock::now();
    cpu_seen = std::max(cpu_seen, subtree_cpu_seconds(sup));  // what dies with the pid namespace is not accounted
    char b = 'k';
    if (write(ctl_p[1], &b, 1) < 0) {}  // the supervisor may have exited already
  };
  char chunk[65536];
  while (open_fd[0] || open_fd[1] || start_open || status_open || proof_open) {
    const auto now = Clock::now();
    if (kill_reason.empty() && !have_report) {
      if (!started && now >= setup_deadline) {
        note = "sandbox: the program did not start within " + std::to_string(L.setup_seconds) + " s of sandbox set-up";
        request_kill("error");
      } else if (started && now >= probe_at) {
        const double cpu = subtree_cpu_seconds(sup);
        cpu_seen = std::max(cpu_seen, cpu);
        if (now >= run_deadline && probe_cpu >= 0) {
          const double share = (cpu - probe_cpu) / std::max(1e-3, std::chrono::duration<double>(now - probe_t).count());
          if (cpu >= (double)L.cpu_seconds) request_kill("cpu_limit");
          else if (share < kMinShare) request_kill("timeout");
        }
        probe_t = now;
        probe_cpu = cpu;
        probe_at = now < run_deadline ? run_deadline : now + window;
      }
    }
    struct pollfd pfd[5];
    int np = 0, map[5];
    for (int i = 0; i < 2; ++i)
      if (open_fd[i]) pfd[np] = {fds[i], POLLIN, 0}, map[np++] = i;
    if (start_open) pfd[np] = {start_p[0], POLLIN, 0}, map[np++] = 2;
    if (status_open) pfd[np] = {status_p[0], POLLIN, 0}, map[np++] = 3;
    if (proof_open) pfd[np] = {report_p[0], POLLIN, 0}, map[np++] = 4;
    int wait_ms = 1000;
    if (kill_reason.empty() && !have_report) {
      const auto next = started ? probe_at : setup_deadline;
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
      wait_ms = (int)std::max<int64_t>(1, std::min<int64_t>(wait_ms, ms));
    }
    const int pr = poll(pfd, np, wait_ms);
    if (pr <= 0) continue;
    for (int k = 0; k < np; ++k) {
      if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const int i = map[k];
      if (i == 2) {  // the start pipe: a byte when the program starts, end of file otherwise
        char b;
        const ssize_t n = read(start_p[0], &b, 1);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n == 1 && !started) {
          started = true;
          t_start = Clock::now();
          run_deadline = after(t_start, L.wall_seconds);
          probe_at = std::max(t_start, run_deadline - window);
        }
        start_open = false;
        close_fd(start_p[0]);
        continue;
      }
      if (i == 4) {  // the harness's proof: the token, written once the program's last statement ran
        ssize_t n = read(report_p[0], chunk, sizeof chunk);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
          proof_open = false;
          continue;
        }
        if (proof.size() < 4096) proof.append(chunk, (size_t)std::min<ssize_t>(n, 4096 - (ssize_t)proof.size()));
        continue;
      }
      if (i == 3) {  // the supervisor's report, then end of file when it has exited
        const ssize_t n = read(status_p[0], reinterpret_cast<char*>(&rep) + rep_got, sizeof rep - rep_got);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n > 0) {
          rep_got += (size_t)n;
          have_report = rep_got == sizeof rep;
          continue;
        }
        status_open = false;
        continue;
      }
      ssize_t n = read(fds[i], chunk, sizeof chunk);
      if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) open_fd[i] = false;
        continue;
      }
      total += n;
      const int64_t room = L.capture_bytes - (int64_t)keep[i]->size();
      if (room > 0) keep[i]->append(chunk, (size_t)std::min<int64_t>(room, n));
      if (room < n) res.truncated = true;
      if (total > L.output_bytes && kill_reason.empty()) {
        res.truncated = true;
        request_kill("output_limit");
      }
    }
  }
  int sup_status = 0;
  while (waitpid(sup, &sup_status, 0) < 0 && errno == EINTR) {
  }
  close_all();
  release_slot(slot);
  remove_tree(dir);

  const auto t_end = Clock::now();
  res.setup_seconds = std::chrono::duration<double>((started ? t_start : t_end) - t0).count();
  if (have_report && rep.launched && started) {
    const int64_t start_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t_start.time_since_epoch()).count();
    res.wall_seconds = std::max(0.0, (double)(rep.end_ns - start_ns) * 1e-9);
  } else if (started) {
    res.wall_seconds = std::chrono::duration<double>(t_end - t_start).count();
  }
  if (have_report) res.cpu_seconds = std::max((double)rep.cpu_us * 1e-6, cpu_seen);
  // A program that ended before it was stopped for time was not, however late the evaluator noticed.
  const int64_t killed_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(killed_at.time_since_epoch()).count();
  if ((kill_reason == "timeout" || kill_reason == "cpu_limit") && have_report && rep.launched && rep.end_ns < killed_ns)
    kill_reason.clear();

  res.proven = proof.find(token) != std::string::npos;
  const int ws = rep.wait_status;
  if (have_report && rep.launched) {
    if (WIFEXITED(ws)) res.exit_code = WEXITSTATUS(ws);
    if (WIFSIGNALED(ws)) res.term_signal = WTERMSIG(ws);
  }
  // RLIMIT_CPU ends a process with SIGKILL (soft = hard limit); bubblewrap exits 128 + 9 for it. The
  // limit is checked against tick-sampled CPU time, which can run several percent ahead of the exact
  // figures rusage reports (more so on a busy machine).
  const bool sigkill = res.term_signal == SIGKILL || (use_bwrap && res.exit_code == 128 + SIGKILL);
  if (!have_report || !WIFEXITED(sup_status) || WEXITSTATUS(sup_status) != 0) {
    res.status = "error";
    note = "sandbox: the supervisor of the program failed";
  } else if (!rep.launched) {
    res.status = "error";
    note = std::string("sandbox: fork: ") + std::strerror(rep.fork_errno);
  } else if (!kill_reason.empty()) {
    res.status = kill_reason;
  } else if (!started) {
    res.status = "error";  // bubblewrap could not set up the sandbox; its message is on stderr
  } else if (sigkill && res.cpu_seconds >= 0.8 * (double)L.cpu_seconds) {
    res.status = "cpu_limit";
  } else if (WIFEXITED(ws)) {
    res.status = res.exit_code == 0 && res.proven ? "passed" : "failed";
    if (res.exit_code == 0 && !res.proven)
      note = "sandbox: exit status 0, but the harness did not see the program's last statement run (an early "
             "sys.exit, os._exit, atexit hook or signal, or a refused operation): not a pass";
  } else {
    res.status = "signal";
  }
  if (!note.empty()) res.err += (res.err.empty() || res.err.back() == '\n' ? "" : "\n") + note + "\n";
  res.passed = res.status == "passed";
  return res;
}

}  // namespace lopa
