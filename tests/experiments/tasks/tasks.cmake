# Tasks without LibTorch: GLUE / MBPP / CruxEval loaders and templates, the synthetic language and task
# of the demo and its word tokenizer (tests_tasks); the training-key table's two consumers, `lopa
# train`'s TrainConfig and the sweep planner, accept the same keys and values (tests_train_keys).
lopa_add_test_suite(tasks
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_glue.cpp ${CMAKE_CURRENT_LIST_DIR}/test_mbpp.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_cruxeval.cpp ${CMAKE_CURRENT_LIST_DIR}/test_synthetic.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_holdout.cpp
  LIBS lopa_tasks TIMEOUT 300)
lopa_add_test_suite(train_keys SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_train_keys.cpp
  LIBS lopa_tasks lopa_cluster TIMEOUT 120)
