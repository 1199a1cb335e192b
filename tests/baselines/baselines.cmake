# Baselines behind the Method interface on the real stories260K model: parameter counts against
# their formulas, gradients only into trainable parameters, LoRA numerics and PEFT layout, prefix tuning.
lopa_add_test_suite(baselines SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_baselines.cpp
  LIBS lopa_experiments lopa_baselines lopa_method lopa_runtime TIMEOUT 300)
