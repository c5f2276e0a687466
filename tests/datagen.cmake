# datagen: tasks vs independent computations, laws (Appendix H, section 2.2), determinism
# across producers, configuration errors, and the lawt_datagen command line.
find_package(Threads REQUIRED)
foreach(name tasks laws determinism config)
  add_executable(test_datagen_${name} ${CMAKE_CURRENT_SOURCE_DIR}/test_datagen_${name}.c)
  target_link_libraries(test_datagen_${name} PRIVATE lawt_datagen_lib Threads::Threads)
  add_test(NAME datagen_${name} COMMAND test_datagen_${name})
endforeach()

# Bit-identical whatever OpenBLAS's thread count: a process started with two OpenBLAS threads
# runs datagen on one (datagen sets it) and gives the hash of one started with one. Skipped
# (77) where OpenBLAS cannot start two threads.
add_test(NAME datagen_openblas_threads COMMAND sh -c
  "set -- $(OPENBLAS_NUM_THREADS=1 \"$0\" --hash) $(OPENBLAS_NUM_THREADS=2 \"$0\" --hash) && [ $# -eq 6 ] && [ \"$1 $2\" = '1 1' ] || exit 1; [ \"$4\" = 2 ] || { echo \"datagen_openblas_threads: skipped: OpenBLAS runs $4 threads when asked for 2\"; exit 77; }; [ \"$5\" = 1 ] && [ \"$3\" = \"$6\" ]"
  $<TARGET_FILE:test_datagen_determinism>)
set_tests_properties(datagen_openblas_threads PROPERTIES SKIP_RETURN_CODE 77)

# The viewer: help, both formats, stats, and bad arguments (non-zero exit, a message that
# names the flag and the value).
add_test(NAME datagen_cli_help COMMAND lawt_datagen --help)
set_tests_properties(datagen_cli_help PROPERTIES PASS_REGULAR_EXPRESSION "usage: lawt_datagen")
add_test(NAME datagen_cli_tokens COMMAND sh -c
  "\"$0\" --task matvec --encoding P1000 --dim 3 --dim2 4 --count 4 --seed 1 | grep -c '^V3 V5 .*\tV4 V1 ' | grep -qx 4"
  $<TARGET_FILE:lawt_datagen>)
add_test(NAME datagen_cli_text COMMAND lawt_datagen --task svd --encoding B1999 --out-encoding P1000
  --dims 3-4 --count 2 --seed 5 --stream test --format text)
set_tests_properties(datagen_cli_text PROPERTIES PASS_REGULAR_EXPRESSION "# example 1: svd\ninput [34]x[34]")
add_test(NAME datagen_cli_stats COMMAND lawt_datagen --task eigenvalues --encoding P1000 --dim 5
  --law laplace --count 20000 --seed 1 --stats)
set_tests_properties(datagen_cli_stats PROPERTIES PASS_REGULAR_EXPRESSION "std/sigma = (0\\.99|1\\.00)")
foreach(bad
    "unknown_flag|--frobnicate 3|unknown option '--frobnicate'"
    "bad_task|--task frob|--task: task: unknown task 'frob'"
    "bad_dim|--dim 0|--dim: dim: bad value '0'"
    "bad_encoding|--encoding P7|--encoding: unknown encoding 'P7'"
    "bad_law|--eig-law cauchy|--eig-law: eig_law: unknown law 'cauchy'"
    "bad_count|--count -4|--count: bad value '-4'"
    "bad_stream|--stream valid|--stream: bad value 'valid'"
    "bad_format|--format csv|--format: bad value 'csv'"
    "missing_value|--seed|--seed needs a value")
  string(REPLACE "|" ";" parts "${bad}")
  list(GET parts 0 name)
  list(GET parts 1 args)
  list(GET parts 2 message)
  # The good arguments come first so that the bad one (last) wins.
  add_test(NAME datagen_cli_${name} COMMAND sh -c
    "out=$(\"$0\" --task transpose --encoding P1000 --count 1 --seed 1 ${args} 2>&1); [ $? -ne 0 ] && printf '%s' \"$out\" | grep -qF -- \"${message}\""
    $<TARGET_FILE:lawt_datagen>)
endforeach()
