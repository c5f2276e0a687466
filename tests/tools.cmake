# tools: lawt_inspect, lawt_plot, lawt_solve and the end-of-run summary, on checkpoints made by
# short quick-start runs (a few seconds each); checkpoint_inspect's damage reports part by part.
add_executable(test_checkpoint_inspect test_checkpoint_inspect.c)
target_link_libraries(test_checkpoint_inspect PRIVATE lawt_checkpoint lawt_model lawt_common HDF5::HDF5)
add_test(NAME tools_checkpoint_inspect COMMAND test_checkpoint_inspect)
set_tests_properties(tools_checkpoint_inspect PROPERTIES TIMEOUT 60 LABELS "tools;checkpoint"
                     ENVIRONMENT "OPENBLAS_NUM_THREADS=1")

# test_tools.sh MODE BUILD_DIR SOURCE_DIR WORK_DIR [ARGS...]
function(lawt_tools_test name)
  add_test(NAME tools_${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_tools.sh ${ARGN} ${CMAKE_BINARY_DIR}
                   ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/tools_${name})
  set_tests_properties(tools_${name} PROPERTIES LABELS tools TIMEOUT 300 SKIP_RETURN_CODE 77
                       ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
endfunction()

lawt_tools_test(inspect inspect)
lawt_tools_test(diff diff)
lawt_tools_test(damaged damaged)
lawt_tools_test(plot plot)
lawt_tools_test(sample_size sample_size)
lawt_tools_test(solve_errors solve_errors)
lawt_tools_test(cpu_scale cpu_scale)

# lawt_solve on a model that has learned: the checkpoint of trainer_learns_transpose (the
# quick-start job, ~2 minutes of 2 cores), made available as a fixture rather than trained
# twice. That test is defined by trainer.cmake, read after this file: the property is set once
# every fragment is read.
add_test(NAME tools_solve_transpose
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_tools.sh solve ${CMAKE_BINARY_DIR}
                 ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/tools_solve_transpose
                 ${CMAKE_CURRENT_BINARY_DIR}/trainer_learns_transpose/run/best.h5)
set_tests_properties(tools_solve_transpose PROPERTIES LABELS "tools;slow" TIMEOUT 120
                     FIXTURES_REQUIRED quickstart_model)
cmake_language(DEFER CALL set_tests_properties trainer_learns_transpose PROPERTIES
               FIXTURES_SETUP quickstart_model)
