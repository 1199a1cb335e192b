// GoogleTest main for suites that run under mpirun: MPI is initialised around the tests (also when
// started by hand: an MPI singleton), and only rank 0 prints results (every rank still runs and
// asserts). A collective left waiting by a rank that failed an assertion ends the job after
// LOPA_COLLECTIVE_TIMEOUT_S (120 s unless set; see runtime/collective_watchdog.h) instead of hanging
// until the CTest timeout. Self-contained (no lopa library) so that any suite can use it.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>

int main(int argc, char** argv) {
  setenv("LOPA_COLLECTIVE_TIMEOUT_S", "120", /*overwrite=*/0);
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  // A failure on any rank fails the job.
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any_failed ? 1 : 0;
}
