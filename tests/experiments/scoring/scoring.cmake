# Scoring without LibTorch: metrics and pass@k (tests_scoring); sandboxed execution and the end-to-end
# canonical-solution checks (tests_sandbox); the `lopa score` command (tests_score).
lopa_add_test_suite(scoring SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_metrics.cpp LIBS lopa_scoring TIMEOUT 120)
lopa_add_test_suite(sandbox
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sandbox.cpp ${CMAKE_CURRENT_LIST_DIR}/test_score_code.cpp
  LIBS lopa_scoring TIMEOUT 1500 RESOURCE_LOCK sandbox)
lopa_add_test_suite(score
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_score_cli.cpp
  LIBS lopa_scoring TIMEOUT 300 RESOURCE_LOCK sandbox)
# The full gold-stability check (ScoreGold.DISABLED_*: every MBPP-test / CruxEval gold answer, 3 times at
# 1 worker and at the default, then beside CPU hogs; ~25 min on 2 busy cores) only runs when asked for:
#   ctest --test-dir build -C Long -L long
add_test(NAME long.ScoreGoldFullCountsAreStable CONFIGURATIONS Long
  COMMAND tests_sandbox --gtest_also_run_disabled_tests
          --gtest_filter=ScoreGold.DISABLED_FullCountsAreStableAcrossRunsWorkersAndLoad)
set_tests_properties(long.ScoreGoldFullCountsAreStable PROPERTIES
  LABELS long TIMEOUT 5400 RESOURCE_LOCK sandbox ENVIRONMENT "LOPA_SHARED_DIR=${LOPA_SHARED_DIR}")
