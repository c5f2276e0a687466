# gpu: the CUDA backend against the CPU reference (tests/gpu/test_cuda_parity.c). Built only
# when the CUDA backend is (LAWT_HAVE_CUDA); without a usable GPU the program exits 77 and CTest
# reports the test as skipped. tests/gpu/run.sh is the one command for a GPU machine (build,
# parity, compute-sanitizer).
if(LAWT_HAVE_CUDA)
  # what the two share (tests/gpu/cuda_fixtures.h): device buffers, checks against the CPU
  add_library(lawt_test_cuda_fixtures STATIC ${CMAKE_SOURCE_DIR}/tests/gpu/cuda_fixtures.c)
  target_link_libraries(lawt_test_cuda_fixtures PUBLIC lawt_test_model_fixtures)
  add_executable(test_cuda_parity ${CMAKE_SOURCE_DIR}/tests/gpu/test_cuda_parity.c)
  target_link_libraries(test_cuda_parity PRIVATE lawt_test_cuda_fixtures)
  add_test(NAME gpu_cuda_parity COMMAND test_cuda_parity)
  set_tests_properties(gpu_cuda_parity PROPERTIES SKIP_RETURN_CODE 77
                       ENVIRONMENT "OPENBLAS_NUM_THREADS=2")
  # the LSTM and GRU encoder-decoders' cells, model and decoding (Appendix E.1)
  add_executable(test_cuda_recurrent ${CMAKE_SOURCE_DIR}/tests/gpu/test_cuda_recurrent.c)
  target_link_libraries(test_cuda_recurrent PRIVATE lawt_test_cuda_fixtures)
  add_test(NAME gpu_cuda_recurrent COMMAND test_cuda_recurrent)
  set_tests_properties(gpu_cuda_recurrent PROPERTIES SKIP_RETURN_CODE 77
                       ENVIRONMENT "OPENBLAS_NUM_THREADS=2")
endif()

# NCCL all-reduce of device buffers, as a singleton (one GPU); tests/gpu/run.sh also runs it at
# np = number of GPUs when there are several.
if(LAWT_HAVE_NCCL)
  add_executable(test_nccl ${CMAKE_SOURCE_DIR}/tests/gpu/test_nccl.c)
  target_link_libraries(test_nccl PRIVATE lawt_comm_nccl lawt_model)
  add_test(NAME gpu_nccl COMMAND test_nccl)
  set_tests_properties(gpu_nccl PROPERTIES SKIP_RETURN_CODE 77)
  # every GPU in one process: all-reduce, and data-parallel training against one GPU (the
  # model, hence lawt_model); skipped below 2 GPUs
  add_test(NAME gpu_nccl_devices COMMAND test_nccl --devices)
  set_tests_properties(gpu_nccl_devices PROPERTIES SKIP_RETURN_CODE 77)
endif()
