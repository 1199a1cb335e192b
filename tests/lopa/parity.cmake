# Golden-loss parity with the official LoPA code (bench/official_ref.py, PyTorch): lopa train's per-step
# losses for LoPA (every combination), IDPG, PT and LoRA equal the reference's over 20 AdamW steps
# (tests_official_parity; skipped with a message when /usr/bin/python3 lacks torch or h5py).
lopa_add_test_suite(official_parity SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_official_parity.cpp
  LIBS nlohmann_json::nlohmann_json TIMEOUT 600)
