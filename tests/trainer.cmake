# trainer: the configuration (unit tests), lawt_dist's command line and error messages, every
# jobs/*.ini starting, jobs/README.md matching --help-config, determinism, np 2 against np 1,
# exact resume, and the end-to-end learning tests of a tiny model (label "slow").
add_executable(test_trainer_config test_trainer_config.c)
target_link_libraries(test_trainer_config PRIVATE lawt_trainer)
add_test(NAME trainer_config COMMAND test_trainer_config)
set_tests_properties(trainer_config PROPERTIES LABELS trainer)

# The evaluation's measurements on an untrained model: the test loss is the training loss.
add_executable(test_trainer_eval test_trainer_eval.c)
target_link_libraries(test_trainer_eval PRIVATE lawt_trainer)
add_test(NAME trainer_eval COMMAND test_trainer_eval)
set_tests_properties(trainer_eval PROPERTIES LABELS trainer)

# test_trainer.sh MODE LAWT_DIST SOURCE_DIR WORK_DIR [ARGS...]
function(lawt_trainer_test name mode)
  add_test(NAME trainer_${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_trainer.sh ${mode} $<TARGET_FILE:lawt_dist>
                   ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/trainer_${name} ${ARGN})
  # lawt_dist starts MPI, whose allocations LeakSanitizer reports as leaks (see comm.cmake).
  set_tests_properties(trainer_${name} PROPERTIES LABELS trainer TIMEOUT 300
                       ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
endfunction()

lawt_trainer_test(errors errors)
lawt_trainer_test(jobs jobs)
lawt_trainer_test(readme readme)
lawt_trainer_test(determinism determinism)
lawt_trainer_test(resume resume)
# The recurrent models (Appendix E.1) resume exactly too: their config fields in the checkpoint.
lawt_trainer_test(resume_gru resume --set model.arch=gru --set model.rnn_layers=2
                  --set model.rnn_hidden=48)
lawt_trainer_test(measures measures)
# about 20 s; a dozen lawt_dist runs, slower under the sanitizers
set_tests_properties(trainer_measures PROPERTIES TIMEOUT 600)
if(LAWT_WITH_MPI)
  lawt_trainer_test(mpi mpi ${LAWT_MPIEXEC} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS})
  lawt_trainer_test(mpi4 mpi ${LAWT_MPIEXEC} ${MPIEXEC_NUMPROC_FLAG} 4 ${MPIEXEC_PREFLAGS})
  lawt_trainer_test(batch_per_rank batch_per_rank ${LAWT_MPIEXEC} ${MPIEXEC_NUMPROC_FLAG} 4
                    ${MPIEXEC_PREFLAGS})
  set_tests_properties(trainer_mpi trainer_mpi4 trainer_batch_per_rank PROPERTIES
                       LABELS "trainer;mpi" PROCESSORS 2
                       ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0;OPENBLAS_NUM_THREADS=1")
endif()

# The end-to-end criteria: a 1/1-layer, 64-dimension model learns 3x3 transposition (>= 99%
# exact; the quick-start job, so the README's first command is tested too) and 3x3 addition
# (>= 95% at 5% tolerance) in a few minutes on 2 cores.
# --evaluate trains a model for 800 steps first, so it runs with the learning tests.
lawt_trainer_test(evaluate evaluate)
set_tests_properties(trainer_evaluate PROPERTIES LABELS "trainer;slow" PROCESSORS 2)
lawt_trainer_test(learns_transpose learn quickstart.ini 5 99)
lawt_trainer_test(learns_add learn test_add_3x3.ini 5 95)
# The fastest run of the CPU-scale reproduction (issue 16, results/cpu-scale.md: 99.90% exact on
# one thread), rectangular 3x4 transposition, here on two threads.
lawt_trainer_test(learns_transpose_rect learn cpu/transpose.ini 5 99 --set train.threads=2)
# Appendix E's other architectures (issue 17): a universal transformer whose encoder is one
# layer looped 4 times, copy-gated, learns 3x3 transposition; a GRU encoder-decoder learns 1x2
# transposition (the job files say what was measured).
lawt_trainer_test(learns_universal learn test_universal_transpose_3x3.ini 5 95)
lawt_trainer_test(learns_gru learn test_gru_transpose_1x2.ini 5 90)
set_tests_properties(trainer_learns_transpose trainer_learns_add trainer_learns_transpose_rect
                     trainer_learns_universal trainer_learns_gru PROPERTIES
                     LABELS "trainer;slow" TIMEOUT 1500 PROCESSORS 2)
# Learning per example as fast as the paper's code (issue 18): two seeds of 400,000 examples
# side by side, about 13 minutes on 2 cores.
lawt_trainer_test(learns_like_reference like_reference 1 2)
set_tests_properties(trainer_learns_like_reference PROPERTIES LABELS "trainer;slow"
                     TIMEOUT 2400 PROCESSORS 2)

# The training batches, made ahead by the data thread or on demand, against datagen directly.
add_executable(test_batch_source test_batch_source.c)
target_link_libraries(test_batch_source PRIVATE lawt_trainer)
add_test(NAME trainer_batch_source COMMAND test_batch_source)
set_tests_properties(trainer_batch_source PROPERTIES LABELS trainer)

# The installed tree: cmake --install into a temporary prefix, then the installed lawt_dist on
# 2 ranks finds the bare job name inversion.ini in PREFIX/share/lawt/jobs (--dry-run).
if(LAWT_WITH_MPI)
  set(lawt_install_launcher ${LAWT_MPIEXEC} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS})
endif()
add_test(NAME trainer_install
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_install.sh ${CMAKE_BINARY_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/trainer_install ${lawt_install_launcher})
set_tests_properties(trainer_install PROPERTIES LABELS "trainer;mpi" PROCESSORS 2 TIMEOUT 300
                     ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0;OPENBLAS_NUM_THREADS=1")

# jobs/README.md's memory table is what scripts/memory_table.sh makes from lawt_dist's plans.
add_test(NAME trainer_memory_table
         COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/memory_table.sh $<TARGET_FILE:lawt_dist> --check)
set_tests_properties(trainer_memory_table PROPERTIES LABELS trainer TIMEOUT 300
                     ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
