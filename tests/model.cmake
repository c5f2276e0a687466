# model: layer gradients against finite differences, and the whole model (gradients, masking,
# decoding, parameter count, Adam, determinism). OpenBLAS threads are pinned so that results
# are reproducible bit for bit.
add_executable(test_model_layers ${CMAKE_SOURCE_DIR}/tests/test_model_layers.c)
target_link_libraries(test_model_layers PRIVATE lawt_test_model_fixtures)
add_test(NAME model_layers COMMAND test_model_layers)

add_executable(test_model ${CMAKE_SOURCE_DIR}/tests/test_model.c)
target_link_libraries(test_model PRIVATE lawt_test_model_fixtures)
add_test(NAME model COMMAND test_model)
set_tests_properties(model_layers model PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=2")

# The memory plan against the CPU backend's allocations; activations sized by max_src/max_tgt.
add_executable(test_model_memory ${CMAKE_SOURCE_DIR}/tests/test_model_memory.c)
target_link_libraries(test_model_memory PRIVATE lawt_model)
add_test(NAME model_memory COMMAND test_model_memory)
set_tests_properties(model_memory PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=2")

# The LSTM and GRU encoder-decoders (Appendix E.1): cells and the whole model against finite
# differences, parameter count, padding, decoding, determinism, memory plan.
add_executable(test_model_recurrent ${CMAKE_SOURCE_DIR}/tests/test_model_recurrent.c)
target_link_libraries(test_model_recurrent PRIVATE lawt_test_model_fixtures lawt_encoding)
add_test(NAME model_recurrent COMMAND test_model_recurrent)
set_tests_properties(model_recurrent PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=2")

# Universal transformers (issue 17): parameter count, the whole gradient in every loop mode,
# decoding of a looped decoder, determinism.
add_executable(test_universal ${CMAKE_SOURCE_DIR}/tests/test_universal.c)
target_link_libraries(test_universal PRIVATE lawt_test_model_fixtures)
add_test(NAME model_universal COMMAND test_universal)
set_tests_properties(model_universal PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=2")
