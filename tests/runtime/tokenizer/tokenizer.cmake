# Tokenizer (tokenizer.json semantics and slow files) against the fixtures' reference ids, and `lopa tokenize`.
# Links the tokenizer library alone (no LibTorch): the suite builds in seconds and does not wait on runtime/model.
lopa_add_test_suite(tokenizer
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer.cpp ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer_encoders.cpp
  LIBS lopa_tokenizer)
