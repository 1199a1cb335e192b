# The model runtime: safetensors, checkpoints, configs, the Llama family against independent references
# (fixture logits, bench/llama_ref.py), generation, and the info / generate / init-model commands.
lopa_add_test_suite(model SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/../io/test_safetensors.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../io/test_checkpoint.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../io/test_torch_bin.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_llama.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_rotary.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_linear.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_generation.cpp
  LIBS lopa_runtime nlohmann_json::nlohmann_json)
target_include_directories(tests_model PRIVATE ${CMAKE_CURRENT_LIST_DIR})
# GPT-2, CodeGen and Phi against bench/{gpt2,codegen,phi}_ref.py through the `lopa logits` / `generate`
# commands, tp = 2 against tp = 1, and the architecture errors.
lopa_add_test_suite(decoders SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_decoders.cpp
  LIBS lopa_runtime nlohmann_json::nlohmann_json TIMEOUT 600)
target_include_directories(tests_decoders PRIVATE ${CMAKE_CURRENT_LIST_DIR})
# RoBERTa / CodeBERT, BERT and CodeSage against bench/{roberta,bert,codesage}_ref.py through `lopa logits`
# (masked-LM logits) and `lopa embed`, tp = 2 against tp = 1, the Encoder API, init-model, info and errors.
lopa_add_test_suite(encoders SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_encoders.cpp
  LIBS lopa_runtime nlohmann_json::nlohmann_json TIMEOUT 600)
target_include_directories(tests_encoders PRIVATE ${CMAKE_CURRENT_LIST_DIR})
