# lopa train / lopa eval end to end on stories260K: every method trains on the in-domain story-names
# task through the CLI; exact resume after a SIGUSR1 checkpoint; tp = 2 equals tp = 1; the trainer's
# units (batching, schedules) (tests_train). Every method on random-init GPT-2, CodeGen and Phi
# (tests/support/family_models.h); tp = 2 = tp = 1 (tests_train_arch).
lopa_add_test_suite(train SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_train.cpp ${CMAKE_CURRENT_LIST_DIR}/test_trainer_units.cpp
  LIBS lopa_train TIMEOUT 900)
lopa_add_test_suite(train_arch SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_train_architectures.cpp
  LIBS lopa_runtime TIMEOUT 900)
# LoPA / IDPG with an encoder of an encoder architecture: RoBERTa on a decoder FM, CodeSage on MBPP;
# the encoder input (its own special tokens, cut from the left) against its tokenizer's ids.
lopa_add_test_suite(train_encoders SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_train_encoders.cpp
  LIBS lopa_eval TIMEOUT 600)
