# LoPA soft-prompt generator: parameter count against the paper's formula, hand-computed forward.
lopa_add_test_suite(lopa_method SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_lopa_prompt.cpp LIBS lopa_method lopa_baselines TIMEOUT 120)
