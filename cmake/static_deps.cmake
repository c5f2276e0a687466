# static_deps.cmake (LAWT_STATIC_DEPS=ON): the targets that the shared build gets from
# find_package(HDF5) and pkg-config (HDF5::HDF5, PkgConfig::LAPACKE, PkgConfig::OPENBLAS,
# PkgConfig::INIH), made from Debian 12's static archives instead, so that a program needs only
# glibc, libstdc++/libgcc_s (and CUDA's libraries) at run time:
#   HDF5      hdf5/serial/libhdf5.a (libhdf5-dev) + libsz.a, libaec.a (libaec-dev), libz.a
#             (zlib1g-dev); the static library needs no curl, unlike the shared one
#   LAPACKE   liblapacke.a (liblapacke-dev), on OpenBLAS's LAPACK
#   OpenBLAS  openblas-pthread/libopenblas.a (libopenblas-pthread-dev) + gcc's libgfortran.a
#             (libgfortran-12-dev) and libquadmath.a
#   inih      libinih.a (libinih-dev)
# scripts/install-deps.sh installs these packages.

set(lawt_static_dirs /usr/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/hdf5/serial
    /usr/lib/x86_64-linux-gnu/openblas-pthread)
function(lawt_static_archive var file)
  find_library(${var} NAMES ${file} HINTS ${lawt_static_dirs} ${ARGN} NO_CACHE)
  if(NOT ${var})
    message(FATAL_ERROR "LAWT_STATIC_DEPS: ${file} not found (scripts/install-deps.sh installs "
                        "the packages that ship it; see cmake/static_deps.cmake)")
  endif()
  set(${var} ${${var}} PARENT_SCOPE)
endfunction()

# gcc's own archives: the compiler knows where they are.
foreach(lib gfortran quadmath)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=lib${lib}.a
                  OUTPUT_VARIABLE lawt_${lib}_a OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT IS_ABSOLUTE "${lawt_${lib}_a}" OR NOT EXISTS "${lawt_${lib}_a}")
    message(FATAL_ERROR "LAWT_STATIC_DEPS: lib${lib}.a not found by ${CMAKE_C_COMPILER} "
                        "(Debian: libgfortran-12-dev)")
  endif()
endforeach()

find_package(Threads REQUIRED)
lawt_static_archive(lawt_hdf5_a libhdf5.a PATHS /usr/lib/x86_64-linux-gnu/hdf5/serial)
lawt_static_archive(lawt_sz_a libsz.a)
lawt_static_archive(lawt_aec_a libaec.a)
lawt_static_archive(lawt_z_a libz.a)
lawt_static_archive(lawt_openblas_a libopenblas.a PATHS /usr/lib/x86_64-linux-gnu/openblas-pthread)
lawt_static_archive(lawt_lapacke_a liblapacke.a)
lawt_static_archive(lawt_inih_a libinih.a)
find_path(lawt_hdf5_include hdf5.h HINTS /usr/include/hdf5/serial REQUIRED NO_CACHE)
find_path(lawt_openblas_include cblas.h HINTS /usr/include/x86_64-linux-gnu/openblas-pthread
          REQUIRED NO_CACHE)

# LAPACKE sits in the OpenBLAS target, just before libopenblas.a: a static archive only
# resolves the symbols of what came before it, and a program whose first user of OpenBLAS
# (the model) is linked before its first user of LAPACKE (datagen) would otherwise get
# libopenblas.a ahead of liblapacke.a and miss LAPACK's dgesdd_, dsyevd_, ...
add_library(PkgConfig::OPENBLAS INTERFACE IMPORTED)
target_include_directories(PkgConfig::OPENBLAS INTERFACE ${lawt_openblas_include})
target_link_libraries(PkgConfig::OPENBLAS INTERFACE ${lawt_lapacke_a} ${lawt_openblas_a}
                      ${lawt_gfortran_a} ${lawt_quadmath_a} Threads::Threads m)

add_library(PkgConfig::LAPACKE INTERFACE IMPORTED)
target_link_libraries(PkgConfig::LAPACKE INTERFACE PkgConfig::OPENBLAS)

add_library(PkgConfig::INIH INTERFACE IMPORTED)
target_link_libraries(PkgConfig::INIH INTERFACE ${lawt_inih_a})

add_library(HDF5::HDF5 INTERFACE IMPORTED)
target_include_directories(HDF5::HDF5 INTERFACE ${lawt_hdf5_include})
target_link_libraries(HDF5::HDF5 INTERFACE ${lawt_hdf5_a} ${lawt_sz_a} ${lawt_aec_a} ${lawt_z_a}
                      ${CMAKE_DL_LIBS} m)
