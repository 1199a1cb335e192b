# lopa serve. tests_serve_batching: the continuous-batching pieces (KV cache rows joining and leaving,
# the LoRA bank's gathered per-row matmul, the soft-prompt codec) against independent paths.
# tests_serve: a real server on 127.0.0.1 driven by curl and the official `openai` npm client
# (scripts/setup_node_clients.sh installs it into build/node): greedy completions of every method in
# one mixed batch equal `lopa generate --adapter`, bad input gets 400, a disconnect frees its slot,
# a bounded load test, SIGTERM drains and exits 0. Its tiny runs are trained once into the build tree.
lopa_add_test_suite(serve_batching SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_batching.cpp
  LIBS lopa_serve lopa_eval TIMEOUT 300)
lopa_add_test_suite(serve SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_serve.cpp
  LIBS lopa_serve lopa_eval TIMEOUT 600)
target_compile_definitions(tests_serve PRIVATE LOPA_SERVE_RUNS_DIR="${CMAKE_BINARY_DIR}/tests/serve_runs"
  LOPA_NODE_DIR="${CMAKE_BINARY_DIR}/node")
