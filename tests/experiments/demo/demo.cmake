# The embedded default: a shortened `lopa demo` runs end to end (pretrain, sweep of 2-rank cells, table,
# plot) and reuses its cached FM on the next run; the demo's specs and data (experiments/demo/demo.h)
# plan as intended through the sweep planner.
lopa_add_test_suite(demo SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_demo.cpp ${CMAKE_CURRENT_LIST_DIR}/test_demo_specs.cpp
  LIBS lopa_demo lopa_cluster TIMEOUT 600)
