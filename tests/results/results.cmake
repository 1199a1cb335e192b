# results/: HDF5 run log writer/reader (round trip, SIGKILL, second writer, h5py, h5dump), report
# tables against hand-computed statistics, LaTeX structure, plots.
lopa_add_test_suite(results
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_run_log.cpp ${CMAKE_CURRENT_LIST_DIR}/test_report.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_plot.cpp ${CMAKE_CURRENT_LIST_DIR}/test_cli.cpp
          ${CMAKE_CURRENT_LIST_DIR}/test_atomic_file.cpp ${CMAKE_CURRENT_LIST_DIR}/test_report_select.cpp
  LIBS lopa_results
  TIMEOUT 300)
