# lopa bench train|generate --json on stories260K: every key present, the FLOP and MFU relations hold,
# values positive, each method through the trainer's step; tp = 2 under mpirun. Not timed.
lopa_add_test_suite(bench_cli SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bench_cli.cpp LIBS lopa_runtime TIMEOUT 600)
if(LOPA_USE_TCMALLOC AND LOPA_TCMALLOC_LIBRARY)
  target_compile_definitions(tests_bench_cli PRIVATE LOPA_LINKED_TCMALLOC=1)
else()
  target_compile_definitions(tests_bench_cli PRIVATE LOPA_LINKED_TCMALLOC=0)
endif()
