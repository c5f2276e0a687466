# comm: collectives at np 1, 2, 4 (and as a singleton), and the failure modes of a rank
# (comm_abort, lawt_die, SIGKILL, an MPI error) ending the whole np=2 job within seconds,
# non-zero, with a message naming the rank; a stop signal sent to the launcher reaching
# every rank. Without MPI (LAWT_WITH_MPI=OFF) the single-process group's own tests instead.
add_executable(test_comm test_comm.c)
target_link_libraries(test_comm PRIVATE lawt_comm lawt_common)
add_executable(test_comm_fail test_comm_fail.c)
target_link_libraries(test_comm_fail PRIVATE lawt_comm lawt_common)

if(NOT LAWT_WITH_MPI)
  # One process (comm_single.c): the same collectives at np 1, a broadcast from a root that
  # does not exist refused naming it, and a stop signal agreed on and ending with status 75.
  add_test(NAME comm_single COMMAND test_comm)
  set_tests_properties(comm_single PROPERTIES TIMEOUT 60 LABELS comm)
  add_test(NAME comm_single_badroot
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_comm_fail.sh mpierror nonzero 10
                   "^lawt: rank 0 .*: comm_broadcast: root 4, but the only rank is 0$" --
                   $<TARGET_FILE:test_comm_fail> mpierror)
  add_test(NAME comm_single_stop
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_comm_fail.sh stop 75 10
                   "^rank 0: stop signal 10 \\(here: 1\\) agreed at step [0-9]+$"
                   "^rank 0: checkpoint done$" -- $<TARGET_FILE:test_comm_fail> stop)
  set_tests_properties(comm_single_badroot comm_single_stop PROPERTIES TIMEOUT 60 LABELS comm)
  return()
endif()

# Open MPI leaks memory it allocates in MPI_Init (in its dlopen'ed components, which
# LeakSanitizer cannot suppress by name): leak detection is off for the MPI programs; AddressSanitizer
# and UBSan still check them. (No leak in lawt's code: checked with detect_leaks=1.)
set(LAWT_MPI_TEST_ENV "ASAN_OPTIONS=detect_leaks=0")

foreach(np 1 2 4)
  add_test(NAME comm_np${np}
           COMMAND ${LAWT_MPIEXEC} ${MPIEXEC_NUMPROC_FLAG} ${np} ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:test_comm> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(comm_np${np} PROPERTIES TIMEOUT 120 LABELS "comm;mpi" PROCESSORS ${np}
                       ENVIRONMENT "${LAWT_MPI_TEST_ENV}")
endforeach()
add_test(NAME comm_singleton COMMAND test_comm)
set_tests_properties(comm_singleton PROPERTIES TIMEOUT 60 LABELS "comm;mpi"
                     ENVIRONMENT "${LAWT_MPI_TEST_ENV}")

# test_comm_fail.sh MODE EXPECTED-STATUS MAX-SECONDS REGEX... -- COMMAND...
function(lawt_comm_fail_test mode status)
  add_test(NAME comm_fail_${mode}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_comm_fail.sh ${mode} ${status} 10 ${ARGN} --
                   ${LAWT_MPIEXEC} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:test_comm_fail> ${mode} ${MPIEXEC_POSTFLAGS})
  set_tests_properties(comm_fail_${mode} PROPERTIES TIMEOUT 60 LABELS "comm;mpi" PROCESSORS 2
                       ENVIRONMENT "${LAWT_MPI_TEST_ENV}")
endfunction()
lawt_comm_fail_test(abort nonzero "^lawt: rank 1 .*: injected failure \\(abort\\)$")
lawt_comm_fail_test(die nonzero "^lawt: error: injected failure \\(die\\)$"
                    "^lawt: rank 1 .*: exiting before comm_finalize")
lawt_comm_fail_test(kill nonzero "process rank 1 .*signal 9")
lawt_comm_fail_test(mpierror nonzero
                    "^lawt: rank [01] .*: .*comm\\.c:[0-9]+: MPI_Bcast.* failed: MPI_ERR_ROOT")
# The script sends SIGUSR1 to the launcher once rank 0 prints "ready"; all ranks agree on the
# stop at the same step, rank 0 "checkpoints" for 1 s while the others wait, status 75.
# mpiexec forwards the signal to the ranks one after the other: a rank may agree to stop
# before its own copy arrives (then it reports none); at least one rank saw it, and
# test_comm_fail.sh checks that every rank agreed at the same step.
lawt_comm_fail_test(stop 75 "^rank [01]: stop signal 10 \\(here: 1\\) agreed at step [0-9]+$"
                    "^rank 0: stop signal (10 \\(here: 1\\)|0 \\(here: 0\\)) agreed at step [0-9]+$"
                    "^rank 1: stop signal (10 \\(here: 1\\)|0 \\(here: 0\\)) agreed at step [0-9]+$"
                    "^rank 0: checkpoint done$")

# Slurm for real: a private slurmctld/slurmd/munged (root) runs jobs/slurm/train_cpu.sbatch on
# a tiny config: a short run completes; a run stopped by SIGUSR1 requeues itself and resumes.
# Registered only where Slurm is installed; the script exits 77 (skipped) when not root.
find_program(LAWT_SBATCH sbatch)
find_program(LAWT_SLURMCTLD slurmctld)
if(LAWT_SBATCH AND LAWT_SLURMCTLD AND TARGET lawt_dist)
  add_test(NAME slurm_train_cpu
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_slurm.sh $<TARGET_FILE:lawt_dist>
                   ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/slurm_train_cpu)
  set_tests_properties(slurm_train_cpu PROPERTIES LABELS "slurm;mpi" TIMEOUT 600 PROCESSORS 2
                       RUN_SERIAL TRUE SKIP_RETURN_CODE 77 ENVIRONMENT "${LAWT_MPI_TEST_ENV}")
else()
  message(STATUS "lawt: Slurm (sbatch, slurmctld) or lawt_dist not found: test slurm_train_cpu skipped")
endif()
# A single process that dies (lawt_die after comm_init) says why and exits 1, without Open
# MPI's MPI_ABORT banner: there is no other rank to take down.
add_test(NAME comm_fail_alone
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_comm_fail.sh die_alone 1 10
                 "^lawt: error: injected failure \\(die_alone\\)$" "!MPI_ABORT" --
                 $<TARGET_FILE:test_comm_fail> die_alone)
set_tests_properties(comm_fail_alone PROPERTIES TIMEOUT 60 LABELS "comm;mpi"
                     ENVIRONMENT "${LAWT_MPI_TEST_ENV}")
