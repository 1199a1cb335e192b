# runtime/base/json.h: the depth-limited JSON parser every reader uses, directly and through the
# tokenizer's readers (tokenizer.json by SAX, tokenizer_config.json). No LibTorch: builds in seconds.
lopa_add_test_suite(json SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_json.cpp LIBS lopa_tokenizer TIMEOUT 120)
# runtime/base/dropout.h: the counter-hash dropout of LoRA and the prompt heads, against dropout's definition.
lopa_add_test_suite(dropout SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_dropout.cpp LIBS lopa_base TIMEOUT 120)
