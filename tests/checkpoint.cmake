# checkpoint: save/load round trip (bit-exact), refused corrupt/truncated files, failed writes
# keeping the previous file, latest/keep_last; and the layout as h5ls/h5dump see it.
add_executable(test_checkpoint test_checkpoint.c)
target_link_libraries(test_checkpoint PRIVATE lawt_checkpoint lawt_model lawt_common HDF5::HDF5)
add_test(NAME checkpoint COMMAND test_checkpoint)
set_tests_properties(checkpoint PROPERTIES TIMEOUT 120 LABELS "checkpoint"
                     ENVIRONMENT "OPENBLAS_NUM_THREADS=1")

# Retraining (Appendix F.1): another max_len keeps the overlapping position rows, a fresh
# optimizer, and other vocabularies or shapes refused naming the field.
add_executable(test_checkpoint_retrain test_checkpoint_retrain.c)
target_link_libraries(test_checkpoint_retrain PRIVATE lawt_checkpoint lawt_model lawt_encoding lawt_common
                      HDF5::HDF5)
add_test(NAME checkpoint_retrain COMMAND test_checkpoint_retrain)
set_tests_properties(checkpoint_retrain PROPERTIES TIMEOUT 120 LABELS "checkpoint"
                     ENVIRONMENT "OPENBLAS_NUM_THREADS=1")

find_program(LAWT_H5LS h5ls)
find_program(LAWT_H5DUMP h5dump)
if(LAWT_H5LS AND LAWT_H5DUMP)
  add_test(NAME checkpoint_h5ls
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint_h5ls.sh
                   $<TARGET_FILE:test_checkpoint> ${LAWT_H5LS} ${LAWT_H5DUMP})
  set_tests_properties(checkpoint_h5ls PROPERTIES TIMEOUT 60 LABELS "checkpoint"
                       ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
else()
  message(STATUS "lawt: h5ls/h5dump not found (package hdf5-tools): test checkpoint_h5ls skipped")
endif()

# Damaged, truncated and foreign checkpoints (issue 11), each loaded in a child process: refused
# with a message naming the file, or loaded exactly; and a file of format_version 1 still read.
add_executable(test_checkpoint_damage test_checkpoint_damage.c)
target_link_libraries(test_checkpoint_damage PRIVATE lawt_checkpoint lawt_model lawt_common HDF5::HDF5)
add_test(NAME checkpoint_damage
         COMMAND test_checkpoint_damage ${CMAKE_CURRENT_SOURCE_DIR}/data/checkpoint_v1.h5
                 ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/checkpoint/v2.h5)
# HDF5 itself leaks on some damaged files (tests/lsan_hdf5.supp): LeakSanitizer skips those.
set_tests_properties(checkpoint_damage PROPERTIES TIMEOUT 120 LABELS "checkpoint"
                     ENVIRONMENT "OPENBLAS_NUM_THREADS=1;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan_hdf5.supp")
