/* cuda_check.h: every CUDA runtime and cuBLAS call of the CUDA backend goes through one of these
 * macros; a failure dies (lawt_die) naming the file, the line, the call and the error string
 * (cudaGetErrorString) or the cuBLAS status name. Kernel launches are followed by
 * CUDA_CHECK_LAUNCH(), which checks cudaGetLastError() (and, with LAWT_CUDA_SYNC_CHECK defined
 * at compile time, synchronises so that an asynchronous fault is reported at its launch).
 * Usable from C and CUDA C++. */
#ifndef LAWT_MODEL_CUDA_CHECK_H
#define LAWT_MODEL_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "CUBLAS_STATUS_NOT_INITIALIZED" and so on. */
const char *lawt_cublas_status_name(cublasStatus_t s);
/* Die with "model: CUDA error at file:line: call: message". */
void lawt_cuda_fail(const char *file, int line, const char *call, const char *msg)
    __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#define CUDA_CHECK(call)                                                                 \
    do {                                                                                 \
        cudaError_t cuda_check_err_ = (call);                                            \
        if (cuda_check_err_ != cudaSuccess)                                              \
            lawt_cuda_fail(__FILE__, __LINE__, #call, cudaGetErrorString(cuda_check_err_)); \
    } while (0)

#define CUBLAS_CHECK(call)                                                               \
    do {                                                                                 \
        cublasStatus_t cublas_check_st_ = (call);                                        \
        if (cublas_check_st_ != CUBLAS_STATUS_SUCCESS)                                   \
            lawt_cuda_fail(__FILE__, __LINE__, #call,                                    \
                           lawt_cublas_status_name(cublas_check_st_));                   \
    } while (0)

#ifdef LAWT_CUDA_SYNC_CHECK
#define CUDA_CHECK_LAUNCH()                                                              \
    do {                                                                                 \
        CUDA_CHECK(cudaGetLastError());                                                  \
        CUDA_CHECK(cudaDeviceSynchronize());                                             \
    } while (0)
#else
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
#endif

#endif
