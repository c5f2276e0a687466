# Fault injection into training runs (tests/README.md, "Fault injection: training runs"):
# kill -9 during checkpoint writes, a full disk, a killed rank, a NaN loss, signals at
# start-up, --evaluate and the run directory's history, the run directory's lock. Each mode
# is bounded in trials and time (about 40 s in all on 2 cores, 85 s under the sanitizers).
# test_faults_run.sh MODE LAWT_DIST SOURCE_DIR WORK_DIR [LAUNCHER...]
function(lawt_faults_run_test mode)
  add_test(NAME faults_run_${mode}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_faults_run.sh ${mode} $<TARGET_FILE:lawt_dist>
                   ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/faults_run_${mode} ${ARGN})
  # lawt_dist starts MPI, whose allocations LeakSanitizer reports as leaks (see comm.cmake).
  set_tests_properties(faults_run_${mode} PROPERTIES LABELS "trainer;faults" TIMEOUT 240
                       ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
endfunction()

foreach(mode killwrite diskfull nan startup evaluate lock)
  lawt_faults_run_test(${mode})
endforeach()
if(LAWT_WITH_MPI)
  lawt_faults_run_test(mpikill ${LAWT_MPIEXEC} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS})
  set_tests_properties(faults_run_mpikill PROPERTIES LABELS "trainer;faults;mpi" PROCESSORS 2)
endif()
