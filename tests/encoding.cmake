add_executable(test_encoding ${CMAKE_SOURCE_DIR}/tests/test_encoding.c)
target_link_libraries(test_encoding PRIVATE lawt_encoding)
add_test(NAME encoding COMMAND test_encoding)
