# Sweeps and the cluster: spec/plan, sbatch scripts, the local executor, attempt records (sweep record),
# and a real one-node SLURM.
lopa_add_test_suite(cluster
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/plan_test.cpp ${CMAKE_CURRENT_LIST_DIR}/submit_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/local_executor_test.cpp ${CMAKE_CURRENT_LIST_DIR}/slurm_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/record_test.cpp ${CMAKE_CURRENT_LIST_DIR}/spec_sections_test.cpp
  LIBS lopa_cluster nlohmann_json::nlohmann_json
  TIMEOUT 1200)
