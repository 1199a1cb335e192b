# The paper's GLUE setting on a masked-LM FM (experiments/eval/cloze.h): templates and label words,
# the cloze loss and prediction against a hand computation, the soft prompt's place after <s>, role
# errors, and an SST-2 cell with every method on a random-init tiny RoBERTa through lopa train (tests_cloze).
lopa_add_test_suite(cloze SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cloze.cpp LIBS lopa_train TIMEOUT 900)
