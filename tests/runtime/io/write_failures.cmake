# Failing loudly (issue 18): every file lopa writes (AtomicFile, safetensors, save_pretrained, adapters)
# ends a full disk or a file size limit in one error naming the file, with no temporary left; the
# readers of config.json, safetensors headers, shard indexes and adapter configs refuse JSON nested
# too deep. Disk-full cases run on /dev/full and, when this process may mount one, a small tmpfs.
lopa_add_test_suite(write_failures SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_write_failures.cpp
  LIBS lopa_method nlohmann_json::nlohmann_json TIMEOUT 300)
