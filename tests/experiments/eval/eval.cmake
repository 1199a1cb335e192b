# Generation with a trained adapter of every method on every decoder family equals the uncached
# forward (`lopa generate --adapter`, tests_eval); the code tasks (MBPP, CruxEval) through lopa train /
# eval: generation with the method applied and sandboxed pass@1 (tests_train_code; holds the sandbox
# lock: the sandbox suites count the sandbox uids' processes). Length-sorted evaluation batches and
# encoder embeddings against each item alone (test_eval_batching.cpp).
lopa_add_test_suite(eval SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_generate_adapter.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_eval_batching.cpp LIBS lopa_eval TIMEOUT 900)
lopa_add_test_suite(train_code SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_code_tasks.cpp
  LIBS lopa_eval TIMEOUT 600 RESOURCE_LOCK sandbox)
