// MpiRuntime: the RAII guard that initialises MPI once per process (MPI_Init_thread, FUNNELED) and
// finalises it; owned by main(). MPI errors are set to return codes (MPI_ERRORS_RETURN) so that every
// call is checked and reported by name instead of aborting silently.
#pragma once

namespace lopa {

class MpiRuntime {
 public:
  enum class Mode {
    IfLaunched,  // initialise only under mpirun/srun: a process started by hand stays MPI-free
    Always,      // initialise in any case (a process started by hand becomes an MPI singleton)
  };
  explicit MpiRuntime(Mode mode = Mode::IfLaunched, int* argc = nullptr, char*** argv = nullptr);
  // Finalises MPI when this guard initialised it. Unwinding from an exception in a job of several
  // ranks skips MPI_Finalize (which would wait for ranks that wait for this one): the process then
  // exits non-zero unfinalised, and the launcher ends the whole job. (run_rank() in failure.h is the
  // direct path: it prints "rank N: <error>" and aborts at once.)
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  bool owns() const { return owns_; }  // this guard called MPI_Init_thread
  static bool initialized();           // MPI is initialised and not yet finalised (by anyone)

 private:
  bool owns_ = false;
};

}  // namespace lopa
