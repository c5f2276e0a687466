/* device.h: the GPU of a process, for every component that touches one (the CUDA model
 * backend, the NCCL all-reduce): which device a rank drives, decided by one rule, and the one
 * macro that checks CUDA runtime calls. Library lawt_device, built with the CUDA backend only.
 *
 * The rule: local rank r of a node drives device (first + r) modulo the visible devices, first
 * being LAWT_CUDA_DEVICE when set (an ordinal in [0, devices)), else 0. So one process picks a
 * GPU with LAWT_CUDA_DEVICE, several ranks never share one, and CUDA_VISIBLE_DEVICES and
 * Slurm's GPU binding (which restrict what is visible) are respected. Usable from C and CUDA
 * C++. */
#ifndef LAWT_DEVICE_H
#define LAWT_DEVICE_H

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the CUDA runtime sees at least one device, 0 otherwise (no driver, no device); never
 * dies, and clears the error it may leave. */
int device_available(void);
/* The device of local rank local_rank (the rule above); dies with a message naming
 * LAWT_CUDA_DEVICE when it is not a visible ordinal, or when there is no device. */
int device_for_rank(int local_rank);
/* cudaSetDevice(device_for_rank(local_rank)); returns the device. */
int device_select(int local_rank);

/* Dies with "CUDA error at file:line: call: message". */
void device_fail(const char *file, int line, const char *call, const char *msg)
    __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

/* Every CUDA runtime call goes through CUDA_CHECK; kernel launches are followed by
 * CUDA_CHECK_LAUNCH(), which checks cudaGetLastError() (and, with LAWT_CUDA_SYNC_CHECK defined
 * at compile time, synchronises so that an asynchronous fault is reported at its launch). */
#define CUDA_CHECK(call)                                                                 \
    do {                                                                                 \
        cudaError_t cuda_check_err_ = (call);                                            \
        if (cuda_check_err_ != cudaSuccess)                                              \
            device_fail(__FILE__, __LINE__, #call, cudaGetErrorString(cuda_check_err_)); \
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
