# The embedded default: the synthetic language and task are deterministic and their labels agree
# with the corpus, the generated tokenizer round-trips, and a shortened `lopa demo` runs end to end
# (pretrain, sweep of 2-rank cells, table, plot) and reuses its cached FM on the next run.
lopa_add_test_suite(demo SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_synthetic.cpp ${CMAKE_CURRENT_LIST_DIR}/test_demo.cpp
  LIBS lopa_experiments lopa_runtime TIMEOUT 600)
