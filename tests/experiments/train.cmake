# lopa train / lopa eval end to end on stories260K: every method trains on the in-domain story-names
# task through the CLI; exact resume after a SIGUSR1 checkpoint; tp = 2 equals tp = 1; generation
# with a trained adapter (`lopa generate --adapter`).
lopa_add_test_suite(train SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_train.cpp ${CMAKE_CURRENT_LIST_DIR}/test_trainer_units.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_generate_adapter.cpp
  LIBS lopa_experiments lopa_baselines lopa_method lopa_runtime TIMEOUT 900)
# The code tasks (MBPP, CruxEval) through lopa train / eval: generation with the method applied and
# sandboxed pass@1 (holds the sandbox lock: the sandbox suites count the sandbox uids' processes).
lopa_add_test_suite(train_code SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_code_tasks.cpp
  LIBS lopa_experiments TIMEOUT 600 RESOURCE_LOCK sandbox)
# Every method on random-init GPT-2, CodeGen and Phi (tests/support/family_models.h); tp = 2 = tp = 1.
lopa_add_test_suite(train_arch SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_train_architectures.cpp
  LIBS lopa_runtime TIMEOUT 900)
