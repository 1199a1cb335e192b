# Seeded mutation fuzzing of every file parser, in process (tests/fuzz/fuzz_util.h): safetensors,
# config.json, tokenizer.json, GLUE TSV, MBPP / CruxEval JSONL, sweep specs and training INI files.
# Every case must end in success or a one-line lopa::Error naming the file; a crash or hang names its
# case on stderr. apps/options.cpp is compiled in: it is how `lopa train --config` reads its INI file.
lopa_add_test_suite(fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_fuzz_safetensors.cpp ${CMAKE_CURRENT_LIST_DIR}/test_fuzz_json_files.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_fuzz_tasks.cpp ${CMAKE_CURRENT_LIST_DIR}/test_fuzz_ini.cpp
          ${CMAKE_SOURCE_DIR}/apps/options.cpp
  LIBS lopa_io lopa_model lopa_tokenizer lopa_tasks lopa_cluster Boost::program_options
  TIMEOUT 300)
