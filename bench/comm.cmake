# bench_comm: data-parallel training throughput at np = 1, 2 (CPU ranks) and the share of a step
# spent in communication; bench/run_bench_comm.sh runs it under mpirun and appends the table to
# bench/RESULTS.md.
add_executable(bench_comm ${CMAKE_CURRENT_SOURCE_DIR}/bench_comm.c)
target_link_libraries(bench_comm PRIVATE lawt_bench_machine lawt_trainer lawt_comm lawt_model lawt_encoding lawt_common m)
