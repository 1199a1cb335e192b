// Sandboxed execution against hostile programs: each must end as a failed sample within the limits,
// while the evaluator, the machine and the files outside the sandbox stay intact.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "experiments/sandbox.h"
#include "runtime/error.h"

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

// Live processes whose uid is in the sandbox range (>= 1e9).
int sandbox_processes() {
  int n = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/status");
    std::string line;
    bool zombie = false;
    long uid = -1;
    while (std::getline(in, line)) {
      if (line.rfind("State:", 0) == 0) zombie = line.find('Z') != std::string::npos;
      if (line.rfind("Uid:", 0) == 0) uid = std::stol(line.substr(4));
    }
    if (uid >= 1000000000L && !zombie) ++n;
  }
  closedir(d);
  return n;
}

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
  ExecResult f = sandbox().run("raise SystemExit(3)");
  EXPECT_FALSE(f.passed);
  EXPECT_EQ(f.status, "failed");
  EXPECT_EQ(f.exit_code, 3);
  ExecResult a = sandbox().run("assert 1 == 2");
  EXPECT_EQ(a.status, "failed");
  EXPECT_NE(a.err.find("AssertionError"), std::string::npos);
}

TEST(Sandbox, InfiniteLoopIsKilledAtTheTimeout) {
  auto t0 = std::chrono::steady_clock::now();
  ExecResult r = sandbox().run("while True:\n    pass\n");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(r.status == "timeout" || r.status == "signal" || r.status == "failed") << r.status;  // CPU limit 2 s, wall 3 s
  EXPECT_LT(s, 3.0 + 2.0);
  EXPECT_EQ(sandbox_processes(), 0);
  // A sleeping program is not caught by the CPU limit: only the wall-clock timeout ends it.
  ExecResult w = sandbox().run("import time\ntime.sleep(60)\n");
  EXPECT_EQ(w.status, "timeout");
  EXPECT_LT(w.wall_seconds, 3.0 + 2.0);
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
  EXPECT_LT(s, 3.0 + 3.0);
  EXPECT_EQ(sandbox_processes(), 0);
  // The machine still forks: a normal program runs.
  EXPECT_TRUE(sandbox().run("print(1)").passed);
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
      "raise SystemExit(1 if bad else 0)\n";
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
  for (int i = 0; i < 12; ++i) progs.push_back("print(" + std::to_string(i) + " * 2)\nraise SystemExit(" + std::to_string(i % 2) + ")\n");
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
