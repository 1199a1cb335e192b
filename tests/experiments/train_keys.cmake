# Where experiments/ and cluster/ meet (both libraries linked): the training-key table's two consumers,
# `lopa train`'s TrainConfig and the sweep planner, accept the same keys and values; the demo's specs
# and data (experiments/demo.h) plan as intended.
lopa_add_test_suite(train_keys SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_train_keys.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_demo_specs.cpp
  LIBS lopa_experiments lopa_cluster TIMEOUT 120)
