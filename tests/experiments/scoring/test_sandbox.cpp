// Sandboxed execution against hostile programs: each must end as a failed sample within the limits,
// while the evaluator, the machine and the files outside the sandbox stay intact.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "experiments/scoring/sandbox.h"
#include "runtime/base/error.h"
#include "tests/experiments/scoring/cpu_hogs.h"

using namespace lopa;

namespace {

SandboxOptions test_options() {
  SandboxOptions o;
  o.limits.wall_seconds = 3.0;
  o.limits.cpu_seconds = 2;
  return o;
}

const Sandbox& sandbox() {
  static Sandbox s(test_options());
  return s;
}

// Processes, zombies included, whose uid is one this process gives to its sandboxed programs.
int sandbox_processes() {
  const auto [first, count] = sandbox_uid_range();
  int n = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("Uid:", 0) == 0) {
        const unsigned long uid = std::stoul(line.substr(4));
        n += uid >= first && uid < (unsigned long)first + count;
        break;
      }
  }
  closedir(d);
  return n;
}

// Pids (any state) whose parent is this process.
std::vector<pid_t> own_children() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    std::getline(in, line);
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(line.substr(paren + 2));
    char state;
    long ppid = 0;
    rest >> state >> ppid;
    if (ppid == getpid()) out.push_back(std::stoi(e->d_name));
  }
  closedir(d);
  return out;
}

// While alive, this process is a subreaper: it stands in for a PID 1 that reaps slowly (or never),
// as on the machine of the original report. Anything a sample orphans and the sandbox does not reap
// itself would become a zombie child of this process, still counting against its uid's
// RLIMIT_NPROC. On destruction it reaps (by pid) whatever did land here and stops being a subreaper.
struct SlowInit {
  SlowInit() { prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~SlowInit() {
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    for (pid_t p : own_children()) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
  }
};

// A shell script standing in for bwrap that sleeps `seconds` before execing it while `flag` exists:
// sandbox set-up made arbitrarily slow.
struct SlowBwrap {
  explicit SlowBwrap(int seconds) {
    char tmpl[] = "/tmp/lopa-test-slow-bwrap-XXXXXX";
    dir = mkdtemp(tmpl);
    chmod(dir.c_str(), 0755);  // the script runs as the sandbox uid
    path = dir + "/bwrap";
    flag = dir + "/slow";
    std::ofstream(path) << "#!/bin/sh\nif [ -e " << flag << " ]; then sleep " << seconds << "; fi\n"
                        << "exec /usr/bin/bwrap \"$@\"\n";
    chmod(path.c_str(), 0755);
  }
  ~SlowBwrap() {
    unlink(flag.c_str());
    unlink(path.c_str());
    rmdir(dir.c_str());
  }
  void slow(bool on) {
    if (on) std::ofstream(flag) << "";
    else unlink(flag.c_str());
  }
  std::string dir, path, flag;
};

std::string read_file(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(Sandbox, IsRealAndRunsPrograms) {
  ASSERT_TRUE(sandbox().sandboxed()) << sandbox().description();
  ExecResult r = sandbox().run("import sys\nprint('out')\nprint('err', file=sys.stderr)\n");
  EXPECT_TRUE(r.passed) << r.status << r.err;
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_GT(r.cpu_seconds, 0.0);  // the interpreter's start alone takes milliseconds
  EXPECT_GT(r.wall_seconds, 0.0);
  EXPECT_GT(r.setup_seconds, 0.0);
  ExecResult f = sandbox().run("raise SystemExit(3)");
  EXPECT_FALSE(f.passed);
  EXPECT_EQ(f.status, "failed");
  EXPECT_EQ(f.exit_code, 3);
  ExecResult a = sandbox().run("assert 1 == 2");
  EXPECT_EQ(a.status, "failed");
  EXPECT_NE(a.err.find("AssertionError"), std::string::npos);
}

TEST(Sandbox, InfiniteLoopIsKilledAtTheTimeout) {
  // A busy loop meets the CPU limit (2 s) before the wall clock (3 s), and is reported as such.
  auto t0 = std::chrono::steady_clock::now();
  ExecResult r = sandbox().run("while True:\n    pass\n");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.status, "cpu_limit") << r.exit_code << " " << r.err;
  EXPECT_GE(r.cpu_seconds, 1.6);  // the limit is checked on ticks, rusage reports exact time
  EXPECT_LT(r.cpu_seconds, 2.5);
  EXPECT_LT(s, 15.0);  // 2 s of CPU: more wall time only as far as other load takes the cores
  EXPECT_EQ(sandbox_processes(), 0);
  // A sleeping program is not caught by the CPU limit: only the wall-clock timeout ends it.
  ExecResult w = sandbox().run("import time\ntime.sleep(60)\n");
  EXPECT_EQ(w.status, "timeout");
  EXPECT_GE(w.wall_seconds, 3.0);
  EXPECT_LT(w.wall_seconds, 3.0 + 2.0);
  EXPECT_LT(w.cpu_seconds, 1.0);
  EXPECT_EQ(sandbox_processes(), 0);
}

TEST(Sandbox, ComputingPastTheWallDeadlineIsNotATimeout) {
  // 1.5 s of CPU against a 1 s wall clock and a 5 s CPU limit: the program is still computing at the
  // deadline, so it may finish, on a quiet machine and beside one CPU hog per core alike (the load
  // stretches its wall time, not its CPU time). A sleeper is stopped at the deadline either way.
  SandboxOptions o = test_options();
  o.limits.wall_seconds = 1.0;
  o.limits.cpu_seconds = 5;
  Sandbox s(o);
  const std::string busy =
      "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5:\n    pass\nprint('done')\n";
  const std::string sleeper = "import time\ntime.sleep(30)\n";
  for (bool loaded : {false, true}) {
    std::unique_ptr<lopa::test::CpuHogs> hogs;
    if (loaded) hogs = std::make_unique<lopa::test::CpuHogs>();
    ExecResult r = s.run(busy);
    EXPECT_EQ(r.status, "passed") << (loaded ? "loaded: " : "quiet: ") << r.err;
    EXPECT_EQ(r.out, "done\n");
    EXPECT_GE(r.wall_seconds, 1.5);
    EXPECT_GE(r.cpu_seconds, 1.5);
    ExecResult w = s.run(sleeper);
    EXPECT_EQ(w.status, "timeout") << (loaded ? "loaded" : "quiet");
    EXPECT_LT(w.wall_seconds, 2.5);
  }
  EXPECT_EQ(sandbox_processes(), 0);
}

TEST(Sandbox, TimeoutCountsFromTheProgramsStartNotFromSetUp) {
  SlowBwrap slow(2);
  SandboxOptions o = test_options();
  o.bwrap = slow.path;
  Sandbox s(o);  // its self-test runs at full speed
  ASSERT_TRUE(s.sandboxed()) << s.description();
  slow.slow(true);
  // 2 s of set-up + 1.5 s of program: over the 3 s limit from the launch, within it from the start.
  const std::string nap = "import time\ntime.sleep(1.5)\nprint('awake')\n";
  ExecResult r = s.run(nap);
  EXPECT_EQ(r.status, "passed") << r.err;
  EXPECT_EQ(r.out, "awake\n");
  EXPECT_GE(r.setup_seconds, 2.0);
  EXPECT_GE(r.wall_seconds, 1.5);
  EXPECT_LT(r.wall_seconds, 3.0);
  EXPECT_EQ(sandbox_processes(), 0);

  // Set-up has its own limit; overrunning it is a sandbox error, not a failed or timed-out program.
  o.limits.setup_seconds = 1.0;
  slow.slow(false);
  Sandbox hasty(o);
  slow.slow(true);
  auto t0 = std::chrono::steady_clock::now();
  ExecResult e = hasty.run(nap);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(e.status, "error");
  EXPECT_NE(e.err.find("did not start"), std::string::npos) << e.err;
  EXPECT_LT(took, 1.9);
  EXPECT_EQ(sandbox_processes(), 0) << "the sleeping set-up outlived the sample";
}

TEST(Sandbox, NothingOfASampleOutlivesItEvenWithASlowInit) {
  // Bubblewrap's own pid 1 outlives the outer bwrap; what a program leaves behind is orphaned. With
  // a subreaper that does not reap (SlowInit) in place of PID 1, every such process that escaped the
  // sandbox's own reaping would stay a zombie of the program's uid: one worker reuses one uid, so
  // after RLIMIT_NPROC (32) of them its programs could no longer fork (the reported failure).
  SlowInit init;
  SandboxOptions o = test_options();
  o.workers = 1;
  Sandbox one(o);
  std::vector<std::string> progs;
  // Leaves a running child, a double-forked session leader, and unreaped zombies behind.
  progs.push_back("import os, time\nif os.fork() == 0:\n    time.sleep(30)\n    os._exit(0)\nprint('bye')\n");
  progs.push_back(
      "import os, time\n"
      "if os.fork() == 0:\n"
      "    os.setsid()\n"
      "    if os.fork() == 0:\n"
      "        time.sleep(30)\n"
      "    os._exit(0)\n"
      "time.sleep(0.2)\n");
  progs.push_back(
      "import os, time\nfor i in range(5):\n    if os.fork() == 0:\n        os._exit(0)\ntime.sleep(0.2)\n");
  for (int i = 0; i < 100; ++i) progs.push_back("print(" + std::to_string(i) + ")\n");
  auto rs = one.run_all(progs);
  for (size_t i = 0; i < rs.size(); ++i) EXPECT_EQ(rs[i].status, "passed") << "program " << i << ": " << rs[i].err;
  EXPECT_EQ(sandbox_processes(), 0) << "processes or zombies of the sandbox uids remain";
  EXPECT_TRUE(own_children().empty()) << own_children().size() << " orphans of samples were left to 'init'";

  // Without bubblewrap (no pid namespace), the same escapes end with the sample.
  SandboxOptions u = o;
  u.bwrap = "/nonexistent/bwrap";
  u.unsafe_exec = true;
  Sandbox bare(u);
  ASSERT_FALSE(bare.sandboxed());
  rs = bare.run_all({progs[0], progs[1], progs[2], "print(1)"});
  for (size_t i = 0; i < rs.size(); ++i) EXPECT_EQ(rs[i].status, "passed") << "program " << i << ": " << rs[i].err;
  EXPECT_EQ(sandbox_processes(), 0);
  EXPECT_TRUE(own_children().empty());
}

TEST(Sandbox, ForkBombIsContained) {
  // Counts how many processes it manages to start: RLIMIT_NPROC (its own uid) must stop it.
  ExecResult c = sandbox().run(
      "import os, time\n"
      "n = 0\n"
      "for i in range(2000):\n"
      "    try:\n"
      "        pid = os.fork()\n"
      "    except OSError:\n"
      "        break\n"
      "    if pid == 0:\n"
      "        time.sleep(30)\n"
      "        os._exit(0)\n"
      "    n += 1\n"
      "print(n, flush=True)\n"
      "raise SystemExit(1)\n");
  EXPECT_FALSE(c.passed);
  ASSERT_FALSE(c.out.empty()) << c.status << " " << c.err;
  EXPECT_LE(std::stoi(c.out), 32) << "forks that succeeded";
  EXPECT_EQ(sandbox_processes(), 0) << "children outlived the sample";

  // The classic bomb: every process forks forever.
  auto t0 = std::chrono::steady_clock::now();
  ExecResult b = sandbox().run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(b.passed);
  EXPECT_LT(s, 10.0);  // stopped at the wall deadline once the sample as a whole has had 2 s of CPU
  EXPECT_EQ(sandbox_processes(), 0);
  // The machine still forks: a normal program runs.
  EXPECT_TRUE(sandbox().run("print(1)").passed);
}

TEST(Sandbox, UidsWithLeftoverProcessesAreNotHandedOut) {
  // A new evaluator process whose first uid already has more zombies than RLIMIT_NPROC allows (an
  // earlier run with the same pid residue left them, and nobody reaps them): the sandbox must pass
  // that uid by, not hand it to programs that then cannot fork.
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(report[0]);
    const uid_t uid0 = sandbox_uid_range().first;
    int hold[2];
    if (pipe(hold) != 0) _exit(90);
    const pid_t keeper = fork();  // holds 40 zombies of uid0 until told to reap them
    if (keeper == 0) {
      close(hold[1]);
      for (int i = 0; i < 40; ++i)
        if (fork() == 0) _exit(setresgid(uid0, uid0, uid0) == 0 && setresuid(uid0, uid0, uid0) == 0 ? 0 : 1);
      char b;
      if (read(hold[0], &b, 1) < 0) {}
      while (wait(nullptr) > 0) {
      }
      _exit(0);
    }
    close(hold[0]);
    for (int i = 0; i < 500 && sandbox_processes() < 40; ++i) usleep(10000);
    std::string line = std::to_string(sandbox_processes()) + " ";
    try {
      SandboxOptions o = test_options();
      o.workers = 1;
      Sandbox s(o);
      int passed = 0;
      for (int i = 0; i < 5; ++i) passed += s.run("print(1)").passed;
      line += std::to_string(passed);
    } catch (const std::exception& e) {
      line += std::string("error ") + e.what();
    }
    if (write(hold[1], "x", 1) < 0) {}
    waitpid(keeper, nullptr, 0);
    if (write(report[1], line.data(), line.size()) < 0) {}
    _exit(0);
  }
  close(report[1]);
  std::string got;
  char buf[512];
  ssize_t n;
  while ((n = read(report[0], buf, sizeof buf)) > 0) got.append(buf, (size_t)n);
  close(report[0]);
  int st = 0;
  waitpid(child, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_EQ(got, "40 5") << "zombies of the first uid, then programs passed";
}

TEST(Sandbox, HugeAllocationFails) {
  ExecResult r = sandbox().run("x = bytearray(20 * 1024 ** 3)\nprint(len(x))\n");
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.err.find("MemoryError"), std::string::npos) << r.status << r.err;
  EXPECT_LT(r.wall_seconds, 3.0 + 1.0);
}

TEST(Sandbox, CannotWriteOutsideItsDirectory) {
  // A host temp dir with a file the program tries to change, delete and add to.
  char dir[] = "/tmp/lopa-test-host-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  chmod(dir, 0777);  // even a world-writable host directory must stay untouched
  const std::string host = dir, keep = host + "/keep.txt";
  std::ofstream(keep) << "original";
  chmod(keep.c_str(), 0666);
  const std::string src = LOPA_SOURCE_DIR;
  std::string prog =
      "import os\n"
      "bad = []\n"
      "for p in ['" + keep + "', '" + host + "/new.txt', '" + src + "/PWNED', '/root/PWNED', '/var/tmp/PWNED', '/dev/shm/PWNED', '/dev/PWNED']:\n"
      "    try:\n"
      "        open(p, 'w').write('pwned')\n"
      "        bad.append(p)\n"
      "    except OSError:\n"
      "        pass\n"
      "for p in ['" + keep + "']:\n"
      "    try:\n"
      "        os.remove(p)\n"
      "        bad.append('rm ' + p)\n"
      "    except OSError:\n"
      "        pass\n"
      "open('own.txt', 'w').write('ok')  # its own directory is writable\n"
      "print(bad)\n"
      "if bad:\n"
      "    raise SystemExit(1)\n";
  ExecResult r = sandbox().run(prog);
  EXPECT_EQ(r.out, "[]\n") << r.err;
  EXPECT_EQ(read_file(keep), "original");
  struct stat st;
  EXPECT_NE(stat((host + "/new.txt").c_str(), &st), 0);
  EXPECT_NE(stat((src + "/PWNED").c_str(), &st), 0);
  EXPECT_NE(stat("/root/PWNED", &st), 0);
  EXPECT_NE(stat("/var/tmp/PWNED", &st), 0);
  EXPECT_NE(stat("/dev/shm/PWNED", &st), 0);
  // Its own files vanish with it.
  ExecResult again = sandbox().run("import os\nprint(os.listdir('.'))\n");
  EXPECT_EQ(again.out, "['program.py']\n");
  // A file bigger than RLIMIT_FSIZE / the tmpfs is refused.
  ExecResult big = sandbox().run("open('big', 'wb').write(b'x' * (100 << 20))\n");
  EXPECT_FALSE(big.passed);
  unlink(keep.c_str());
  rmdir(dir);
}

TEST(Sandbox, NoNetworkNotEvenLoopback) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ASSERT_EQ(bind(s, (sockaddr*)&a, sizeof a), 0);
  ASSERT_EQ(listen(s, 8), 0);
  socklen_t len = sizeof a;
  getsockname(s, (sockaddr*)&a, &len);
  const int port = ntohs(a.sin_port);
  ExecResult r = sandbox().run("import socket\nc = socket.create_connection(('127.0.0.1', " + std::to_string(port) +
                               "), timeout=2)\nc.sendall(b'hello')\nprint('connected')\n");
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.out.find("connected"), std::string::npos);
  fcntl(s, F_SETFL, O_NONBLOCK);
  EXPECT_LT(accept(s, nullptr, nullptr), 0) << "something connected to the listening socket";
  close(s);
}

TEST(Sandbox, GigabyteOfOutputIsCutOff) {
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  auto t0 = std::chrono::steady_clock::now();
  ExecResult r = sandbox().run("import sys\nb = 'x' * (1 << 20)\nfor i in range(1024):\n    sys.stdout.write(b)\n");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  getrusage(RUSAGE_SELF, &after);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.status, "output_limit");
  EXPECT_TRUE(r.truncated);
  EXPECT_LE((int64_t)r.out.size(), sandbox().options().limits.capture_bytes);
  EXPECT_LT(s, 3.0 + 1.0);
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 200 * 1024) << "evaluator RSS grew (KiB)";
}

TEST(Sandbox, ParallelWorkersKeepOrder) {
  std::vector<std::string> progs;
  for (int i = 0; i < 12; ++i)
    progs.push_back("print(" + std::to_string(i) + " * 2)\n" + (i % 2 ? "raise SystemExit(1)\n" : ""));
  auto rs = sandbox().run_all(progs);
  ASSERT_EQ(rs.size(), 12u);
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(rs[i].out, std::to_string(i * 2) + "\n");
    EXPECT_EQ(rs[i].passed, i % 2 == 0);
  }
}

TEST(Sandbox, RefusesToRunUnsandboxedUnlessUnsafeExec) {
  SandboxOptions o = test_options();
  o.bwrap = "/nonexistent/bwrap";
  try {
    Sandbox s(o);
    FAIL() << "created a sandbox without bubblewrap";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unsafe-exec"), std::string::npos) << e.what();
  }
  o.unsafe_exec = true;
  Sandbox u(o);
  EXPECT_FALSE(u.sandboxed());
  EXPECT_EQ(u.description().rfind("UNSAFE", 0), 0u);
  ExecResult r = u.run("print(6 * 7)");
  EXPECT_TRUE(r.passed);
  EXPECT_EQ(r.out, "42\n");
}

// ---- Scoring integrity (issue 18): a pass is proven by the harness, and the sandbox shows nothing of
// the host but the interpreter.

TEST(Sandbox, ExitStatusZeroWithoutTheHarnessProofIsNoPass) {
  // Each ends with exit status 0 without its last statement (a failing assertion) having run: counted
  // as passed before, when the exit status decided.
  const std::vector<std::pair<std::string, std::string>> early = {
      {"os._exit", "import os\nos._exit(0)\nassert False\n"},
      {"atexit", "import atexit, os\natexit.register(lambda: os._exit(0))\nassert 1 == 2\n"},
      {"sys.exit", "import sys\nsys.exit(0)\nassert False\n"},
      {"exit()", "exit()\nassert False\n"},
      {"SystemExit in a function", "def f():\n    raise SystemExit\nf()\nassert False\n"},
      {"excepthook + atexit", "import sys, atexit, os\nsys.excepthook = lambda *a: None\n"
                              "atexit.register(lambda: os._exit(0))\nassert False\n"},
      {"closed stdout", "import os, sys\nos.close(1)\nos.close(2)\nos._exit(0)\nassert False\n"},
      {"signal handler", "import os, signal\nsignal.signal(signal.SIGALRM, lambda *a: os._exit(0))\n"
                         "signal.alarm(1)\nwhile True:\n    pass\n"},
      {"forked child exits 0", "import os\nif os.fork() == 0:\n    os._exit(0)\nos.wait()\nos._exit(0)\nassert False\n"},
  };
  for (const auto& [what, prog] : early) {
    ExecResult r = sandbox().run(prog);
    EXPECT_EQ(r.exit_code, 0) << what << ": " << r.status << " " << r.err;
    EXPECT_FALSE(r.proven) << what;
    EXPECT_FALSE(r.passed) << what;
    EXPECT_EQ(r.status, "failed") << what;
    EXPECT_NE(r.err.find("not a pass"), std::string::npos) << what << ": " << r.err;
  }
  // The same programs with the assertion true and no early exit pass, proven.
  ExecResult ok = sandbox().run("import os\nassert 1 == 1\n");
  EXPECT_TRUE(ok.passed) << ok.err;
  EXPECT_TRUE(ok.proven);
}

TEST(Sandbox, TheProofCannotBeForged) {
  // Attempts to find or fake the token, or to skip the failing assertion, each followed by os._exit(0)
  // so that only the proof decides. Every one must fail; the ones that touch a refused operation say so.
  const std::vector<std::pair<std::string, std::string>> forgeries = {
      {"frame walk", "import sys, os\nf = sys._getframe()\nwhile f is not None:\n    try:\n"
                     "        for k in f.f_code.co_consts:\n            if isinstance(k, bytes):\n"
                     "                os.write(5, k)\n    except RuntimeError as e:\n        print(e, flush=True)\n"
                     "    f = f.f_back\nos._exit(0)\nassert False\n"},
      {"traceback frames", "import os\ntry:\n    raise ValueError\nexcept ValueError as e:\n"
                           "    f = e.__traceback__.tb_frame\nwhile f is not None:\n    try:\n"
                           "        [os.write(5, k) for k in f.f_code.co_consts if isinstance(k, bytes)]\n"
                           "    except RuntimeError as e:\n        print(e, flush=True)\n    f = f.f_back\nos._exit(0)\nassert False\n"},
      {"harness globals", "import sys, os\ng = sys._getframe().f_back.f_globals\ng['w'](5, b'0' * 32)\n"
                          "os.write(5, b'f' * 32)\nos._exit(0)\nassert False\n"},
      {"token fd", "import os\nprint(os.read(4, 64))\n"},
      {"proc mem", "import os\nfor p in ['/proc/self/mem', '/proc/self/fd/4', '/proc/1/mem']:\n    try:\n"
                   "        open(p, 'rb')\n        print('opened', p, flush=True)\n    except OSError as e:\n        print(e, flush=True)\n"
                   "os.symlink('/proc/self/mem', 'm')\ntry:\n    open('m', 'rb')\n    print('opened via link', flush=True)\n"
                   "except OSError as e:\n    print(e, flush=True)\nos._exit(0)\nassert False\n"},
      {"ctypes", "import ctypes\nos._exit(0)\n"},
      {"gc", "import gc, os\nfor o in gc.get_objects():\n    pass\nos._exit(0)\nassert False\n"},
      {"trace jump", "import sys, os\ndef t(frame, ev, arg):\n    if ev == 'line' and frame.f_lineno == 6:\n"
                     "        frame.f_lineno = 7\n    return t\nsys.settrace(t)\nsys._getframe().f_trace = t\n"
                     "assert False\nx = 1\n"},
      {"another program", "import os\nos.execv('/usr/bin/python3', ['python3', '-c', 'import os; os._exit(0)'])\n"},
      {"subprocess", "import subprocess\nsubprocess.run(['/bin/true'])\n"},
      {"posix_spawn", "import os\nos.posix_spawn('/bin/true', ['true'], {})\n"},
      {"native module", "import importlib.machinery, importlib.util, os\nopen('x.so', 'wb').write(b'\\x7fELF' + b'\\0' * 64)\n"
                        "l = importlib.machinery.ExtensionFileLoader('x', '/tmp/x.so')\n"
                        "importlib.util.module_from_spec(importlib.util.spec_from_loader('x', l))\n"},
      {"subinterpreter", "import _xxsubinterpreters\n"},
  };
  for (const auto& [what, prog] : forgeries) {
    ExecResult r = sandbox().run(prog);
    EXPECT_FALSE(r.passed) << what << ": " << r.out << r.err;
    EXPECT_FALSE(r.proven) << what;
  }
  ExecResult walk = sandbox().run(forgeries[0].second);
  EXPECT_NE(walk.out.find("harness frame is off limits"), std::string::npos) << walk.out << walk.err;
  ExecResult mem = sandbox().run(forgeries[4].second);
  EXPECT_EQ(mem.out.find("opened"), std::string::npos) << mem.out;
  EXPECT_NE(mem.out.find("/proc is off limits"), std::string::npos) << mem.out;
  ExecResult jump = sandbox().run(forgeries[7].second);
  EXPECT_NE(jump.err.find("sys.settrace is not allowed"), std::string::npos) << jump.err;
  ExecResult native = sandbox().run(forgeries[11].second);
  EXPECT_NE(native.err.find("native module"), std::string::npos) << native.err;
}

TEST(Sandbox, OrdinaryProgramsStillPass) {
  // What correct completions do: the standard library (namedtuple and enum read their caller's frame),
  // a __main__ guard, recursion, forking helpers, warnings, and more output than is captured (the
  // proof does not travel on stdout).
  const std::vector<std::string> progs = {
      "import collections, re, math, heapq, itertools, functools, bisect, cmath, datetime, copy, enum, typing\n"
      "P = collections.namedtuple('P', 'a b')\nclass C(enum.Enum):\n    A = 1\nassert P(1, 2).b == 2 and C.A.value == 1\n"
      "assert re.sub('a', 'b', 'aa') == 'bb' and heapq.nsmallest(1, [3, 1]) == [1]\n",
      "def f(n):\n    return 1 if n < 2 else n * f(n - 1)\nif __name__ == '__main__':\n    assert f(10) == 3628800\n",
      "import sys\nsys.setrecursionlimit(5000)\nimport warnings\nwarnings.warn('w')\nassert sys.argv[0].endswith('program.py')\n",
      "import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\nassert True\n",
      "import sys\nfor i in range(4000):\n    print('x' * 40)\n",
      "import traceback\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n    s = traceback.format_exc()\nassert 'ZeroDivisionError' in s\n",
  };
  auto rs = sandbox().run_all(progs);
  for (size_t i = 0; i < rs.size(); ++i) {
    EXPECT_TRUE(rs[i].passed) << "program " << i << ": " << rs[i].status << " " << rs[i].err;
    EXPECT_TRUE(rs[i].proven) << "program " << i;
  }
  EXPECT_TRUE(rs[4].truncated);
}

TEST(Sandbox, SeesNothingOfTheHostButTheInterpreter) {
  // The canonical solutions, the user's home, the checkout (run directories live beside it), the
  // host's /tmp and /etc's secrets exist on the host, and must not in the sandbox.
  const std::string solutions = std::string(LOPA_SHARED_DIR) + "/data/mbpp/mbpp_release_v1_canonical_solutions.jsonl";
  const char* home_env = std::getenv("HOME");
  const std::string home = home_env && *home_env ? home_env : "/root";
  char dir[] = "/tmp/lopa-test-visible-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  chmod(dir, 0755);
  const std::string host_tmp = std::string(dir) + "/secret.txt";
  std::ofstream(host_tmp) << "secret";
  chmod(host_tmp.c_str(), 0644);
  const std::vector<std::string> hidden = {solutions, std::string(LOPA_SHARED_DIR) + "/data", home, LOPA_SOURCE_DIR,
                                           host_tmp, "/etc/passwd", "/etc/hostname", "/var", "/sys"};
  struct stat st;
  for (const auto& p : hidden) ASSERT_EQ(stat(p.c_str(), &st), 0) << p << " should exist on the host";
  std::string list;
  for (const auto& p : hidden) list += "'" + p + "', ";
  ExecResult r = sandbox().run(
      "import os\nseen = []\nfor p in [" + list + "]:\n"
      "    try:\n"
      "        if os.path.isdir(p):\n            os.listdir(p)\n        else:\n            open(p, 'rb').read(1)\n"
      "        seen.append(p)\n"
      "    except OSError:\n        pass\n"
      "print(seen)\n"
      "print(sorted(os.listdir('/')))\n"
      "for p in ['/x', '/usr/x', '/etc/x']:\n"
      "    try:\n        open(p, 'w')\n        seen.append('wrote ' + p)\n    except OSError:\n        pass\n"
      "assert not seen, seen\n");
  EXPECT_TRUE(r.passed) << r.out << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "[]") << r.out;
  // The root holds the mount points only.
  EXPECT_EQ(r.out.find("'home'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("'work'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("'root'"), std::string::npos) << r.out;
  unlink(host_tmp.c_str());
  rmdir(dir);
}
