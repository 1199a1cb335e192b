// A multi-rank program that fails on purpose, one way per scenario; tests/runtime/distributed/test_failure.cpp runs
// it under mpirun and checks that the whole job ends non-zero, quickly, naming the rank and cause.
//   test_failure_worker throw|unwind|bad-file|kill|config|hang|ok [DIR]
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "runtime/base/error.h"
#include "runtime/distributed/failure.h"
#include "runtime/distributed/mpi_runtime.h"
#include "runtime/distributed/process_group.h"

// Shaped like a `lopa` command: the MPI guard lives in the command, the error is caught by main.
int command(int argc, char** argv) {
  lopa::MpiRuntime mpi(lopa::MpiRuntime::Mode::IfLaunched, &argc, &argv);
  const std::string scenario = argc > 1 ? argv[1] : "ok";
  const std::string dir = argc > 2 ? argv[2] : "/tmp";
  if (scenario == "unwind") {
    // No run_rank: the exception unwinds through MpiRuntime to main, which prints it and returns 1.
    lopa::ProcessGroup pg = lopa::ProcessGroup::init(1, "cpu");
    at::Tensor t = at::ones({4});
    if (pg.world_rank == 1) lopa::fail("simulated failure reported by main");
    for (int i = 0; i < 3; ++i) pg.world->all_reduce(t);
    return 0;
  }
  return lopa::run_rank([&] {
    lopa::ProcessGroup pg = lopa::ProcessGroup::init(1, "cpu");
    at::Tensor t = at::ones({4});
    if (scenario == "throw") {
      if (pg.world_rank == 1) lopa::fail("simulated failure while loading the model");
    } else if (scenario == "bad-file") {
      // Every rank reads its own file; only rank 0's exists (e.g. a path valid on one node only).
      const std::string path = dir + "/shard-" + std::to_string(pg.world_rank) + ".bin";
      if (pg.world_rank == 0) std::ofstream(path) << "ok";
      pg.world->barrier();
      std::ifstream in(path);
      LOPA_CHECK(in, path, ": cannot open file");
    } else if (scenario == "kill") {
      if (pg.world_rank == 1) std::raise(SIGKILL);
    } else if (scenario == "config") {
      lopa::check_same_config(pg, "lr = " + std::to_string(pg.world_rank == 1 ? 0.2 : 0.1));
    } else if (scenario == "hang") {
      // Rank 1 skips the collective and sleeps far longer than the watchdog's timeout.
      if (pg.world_rank == 1) std::this_thread::sleep_for(std::chrono::seconds(600));
    }
    // The others wait in collectives for the failed rank.
    for (int i = 0; i < 3; ++i) pg.world->all_reduce(t);
    pg.world->barrier();
    if (pg.is_root()) std::cout << "sum " << t[0].item<float>() << std::endl;
    return 0;
  });
}

int main(int argc, char** argv) {
  try {
    return command(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << lopa::str("worker: error: ", e.what(), "\n") << std::flush;
    return 1;
  }
}
