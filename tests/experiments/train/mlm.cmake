# Masked-LM pretraining (`lopa pretrain --objective mlm`, experiments/train/mlm_pretrain.h): BERT's
# masking rates checked statistically, a random-init tiny RoBERTa whose loss falls, bad input (tests_mlm_pretrain).
lopa_add_test_suite(mlm_pretrain SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mlm_pretrain.cpp LIBS lopa_train TIMEOUT 600)
