# The distributed runtime: communicators and process groups, tensor-parallel layers, data parallelism,
# and failure handling. Suites with MPI_MAIN run once per test at world size 1 (CTest's discovery), and
# as a whole under mpirun below.
lopa_add_test_suite(comm SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_comm.cpp LIBS lopa_distributed MPI_MAIN)
lopa_add_mpi_test(comm_np2 NP 2 EXE tests_comm)
lopa_add_mpi_test(comm_np3 NP 3 EXE tests_comm)

lopa_add_test_suite(tp SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tp.cpp LIBS lopa_distributed MPI_MAIN)
lopa_add_mpi_test(tp_np2 NP 2 EXE tests_tp)
lopa_add_mpi_test(tp_np4 NP 4 EXE tests_tp)

lopa_add_test_suite(dp SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_dp.cpp LIBS lopa_distributed MPI_MAIN)
lopa_add_mpi_test(dp_np2 NP 2 EXE tests_dp)
lopa_add_mpi_test(dp_np3 NP 3 EXE tests_dp)
lopa_add_mpi_test(dp_np4_tp2xdp2 NP 4 EXE tests_dp)

# Failure handling: a plain suite that launches the worker under mpirun itself.
add_executable(test_failure_worker ${CMAKE_CURRENT_LIST_DIR}/test_failure_worker.cpp)
target_link_libraries(test_failure_worker PRIVATE lopa_distributed)
target_compile_options(test_failure_worker PRIVATE ${LOPA_WARNINGS})
lopa_use_pch(test_failure_worker)
lopa_add_test_suite(failure SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_failure.cpp TIMEOUT 300)
target_compile_definitions(tests_failure PRIVATE LOPA_FAILURE_WORKER="$<TARGET_FILE:test_failure_worker>")
add_dependencies(tests_failure test_failure_worker)

# NCCL on CUDA tensors: skips without a CUDA LibTorch + NCCL + GPU (bench/gpu_check.sh runs it on one).
lopa_add_test_suite(comm_nccl SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_comm_nccl.cpp LIBS lopa_distributed MPI_MAIN)


# The real Llama model (runtime/model/) under tp = 2 (np 2) and tp 2 × dp 2 (np 4) against tp = 1.
lopa_add_test_suite(tp_model SOURCES ${CMAKE_CURRENT_LIST_DIR}/../model/test_tp_model.cpp LIBS lopa_runtime MPI_MAIN)
lopa_add_mpi_test(tp_model_np2 NP 2 EXE tests_tp_model)
lopa_add_mpi_test(tp_model_np4_tp2xdp2 NP 4 EXE tests_tp_model)
