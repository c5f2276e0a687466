# tables: lawt_table and the grids of jobs/tables/ (test_tables.sh says what each mode checks).
# smoke and faults take 20 s and 10 s on 2 free cores (40 s and 55 s under the sanitizers);
# their timeouts allow for a machine busy with trainings (smoke: 213 s seen).
function(lawt_tables_test name timeout labels)
  add_test(NAME tables_${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_tables.sh ${name} ${CMAKE_BINARY_DIR}
                   ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/tables_${name})
  set_tests_properties(tables_${name} PROPERTIES LABELS "${labels}" TIMEOUT ${timeout}
                       ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
endfunction()

lawt_tables_test(smoke 900 "tools;tables")
lawt_tables_test(errors 300 "tools;tables")
lawt_tables_test(faults 900 "tools;tables")
# Every grid, full and smoke: about 900 lawt_dist starts (a second each on a busy machine).
lawt_tables_test(check 3600 "tools;tables;slow")
# Every grid's smoke variant end to end: about 300 runs and 120 evaluations of tiny models,
# 660 s on 2 cores shared with two trainings.
lawt_tables_test(smoke_all 3600 "tools;tables;slow")
