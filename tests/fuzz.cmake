# Fuzzing (libFuzzer, clang): targets for the INI configuration, the token decoder and the
# checkpoint loader, built only with -DLAWT_FUZZ=ON in a clang build whose C flags hold
# -fsanitize=fuzzer-no-link,address,undefined. tests/fuzz/run.sh configures that build
# (build-fuzz) and runs each target for a bounded time from its seed corpus; they are not
# CTest tests.
option(LAWT_FUZZ "Build the libFuzzer targets (clang only)" OFF)
if(LAWT_FUZZ)
  foreach(target config decode checkpoint)
    add_executable(fuzz_${target} fuzz/fuzz_${target}.c)
    target_link_options(fuzz_${target} PRIVATE -fsanitize=fuzzer)
  endforeach()
  target_link_libraries(fuzz_config PRIVATE lawt_trainer)
  target_link_libraries(fuzz_decode PRIVATE lawt_encoding)
  target_link_libraries(fuzz_checkpoint PRIVATE lawt_checkpoint lawt_model HDF5::HDF5)
endif()
