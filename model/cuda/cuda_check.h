/* cuda_check.h: every cuBLAS call of the CUDA backend goes through CUBLAS_CHECK, every CUDA
 * runtime call through device.h's CUDA_CHECK (kernel launches: CUDA_CHECK_LAUNCH); a failure
 * dies naming the file, the line, the call and the cuBLAS status name or CUDA's error string.
 * Usable from C and CUDA C++. */
#ifndef LAWT_MODEL_CUDA_CHECK_H
#define LAWT_MODEL_CUDA_CHECK_H

#include <cublas_v2.h>

#include "device/device.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "CUBLAS_STATUS_NOT_INITIALIZED" and so on. */
const char *lawt_cublas_status_name(cublasStatus_t s);

#ifdef __cplusplus
}
#endif

#define CUBLAS_CHECK(call)                                                               \
    do {                                                                                 \
        cublasStatus_t cublas_check_st_ = (call);                                        \
        if (cublas_check_st_ != CUBLAS_STATUS_SUCCESS)                                   \
            device_fail(__FILE__, __LINE__, #call,                                       \
                        lawt_cublas_status_name(cublas_check_st_));                      \
    } while (0)

#endif
