# Tasks and evaluation: loaders, templates, metrics (tests_tasks); sandboxed execution and the
# end-to-end canonical-solution checks (tests_sandbox); the `lopa score` command (tests_score).
lopa_add_test_suite(tasks
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_glue.cpp ${CMAKE_CURRENT_LIST_DIR}/test_mbpp.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_cruxeval.cpp ${CMAKE_CURRENT_LIST_DIR}/test_metrics.cpp
  LIBS lopa_experiments TIMEOUT 300)
lopa_add_test_suite(sandbox
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sandbox.cpp ${CMAKE_CURRENT_LIST_DIR}/test_score_code.cpp
  LIBS lopa_experiments TIMEOUT 1500 RESOURCE_LOCK sandbox)
lopa_add_test_suite(score
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_score_cli.cpp
  LIBS lopa_experiments TIMEOUT 300 RESOURCE_LOCK sandbox)
