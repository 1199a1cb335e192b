# Tokenizer (tokenizer.json semantics) against the fixtures' reference ids, and `lopa tokenize`.
lopa_add_test_suite(tokenizer SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer.cpp LIBS lopa_runtime)
