add_executable(test_eval ${CMAKE_SOURCE_DIR}/tests/test_eval.c)
target_link_libraries(test_eval PRIVATE lawt_eval)
add_test(NAME eval COMMAND test_eval)
