# The run log's lock is never split, SIGUSR1's `interrupted` status, truncation to a checkpoint's step
# on resume, and the status sweep status reads back (issue 18).
lopa_add_test_suite(run_log_reliability SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_run_log_reliability.cpp
  LIBS lopa_results lopa_cluster TIMEOUT 120)
