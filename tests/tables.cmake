# tables: lawt_table and the grids of jobs/tables/ (test_tables.sh says what each mode checks).
function(lawt_tables_test name timeout labels)
  add_test(NAME tables_${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_tables.sh ${name} ${CMAKE_BINARY_DIR}
                   ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/tables_${name})
  set_tests_properties(tables_${name} PROPERTIES LABELS "${labels}" TIMEOUT ${timeout}
                       ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
endfunction()

lawt_tables_test(smoke 300 "tools;tables")
lawt_tables_test(errors 60 "tools;tables")
lawt_tables_test(faults 300 "tools;tables")
# Every grid, full and smoke: about 900 lawt_dist starts (a second each on a busy machine).
lawt_tables_test(check 3600 "tools;tables;slow")
