# Issue 18 end to end on stories260K: a full disk while checkpointing (/dev/full; a tmpfs when root),
# non-finite weights and losses, SIGUSR1's `interrupted` log, SIGKILL after a checkpoint and resume.
lopa_add_test_suite(reliability SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_reliability.cpp LIBS lopa_runtime TIMEOUT 600)
