# lopa train / lopa eval end to end on stories260K: every method trains on the in-domain story-names
# task through the CLI; exact resume after a SIGUSR1 checkpoint; tp = 2 equals tp = 1.
lopa_add_test_suite(train SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_train.cpp ${CMAKE_CURRENT_LIST_DIR}/test_trainer_units.cpp
  LIBS lopa_experiments lopa_baselines lopa_method lopa_runtime TIMEOUT 900)
