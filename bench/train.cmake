# What the training benchmarks share (harness.h), and bench_train: lawt training and decoding
# throughput on CPU next to the PyTorch reference, and the fraction of the sgemm peak; appends
# its table to bench/RESULTS.md.
add_library(lawt_bench_harness STATIC ${CMAKE_CURRENT_SOURCE_DIR}/harness.c)
target_link_libraries(lawt_bench_harness PUBLIC lawt_bench_machine lawt_trainer lawt_model lawt_encoding
                      lawt_common PkgConfig::OPENBLAS m)

add_executable(bench_train ${CMAKE_CURRENT_SOURCE_DIR}/bench_train.c)
target_link_libraries(bench_train PRIVATE lawt_bench_harness)

# bench_gpu: issue 6's measurements on a GPU next to PyTorch on the same GPU (the cuBLAS peak
# needs the CUDA toolkit; without a GPU it exits 77).
add_executable(bench_gpu ${CMAKE_CURRENT_SOURCE_DIR}/bench_gpu.c)
target_link_libraries(bench_gpu PRIVATE lawt_bench_harness)
if(LAWT_HAVE_CUDA)
  target_link_libraries(bench_gpu PRIVATE CUDA::cublas CUDA::cudart)
  target_compile_definitions(bench_gpu PRIVATE LAWT_BENCH_HAVE_CUDA)
endif()
