# runtime/base/dropout.h: the counter-hash dropout of LoRA and the prompt heads, against dropout's definition.
lopa_add_test_suite(dropout SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_dropout.cpp LIBS lopa_base TIMEOUT 120)
