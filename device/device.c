/* device.c: see device.h. */
#include "device/device.h"

#include <stdlib.h>

#include "common/common.h"

int device_available(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        (void)cudaGetLastError(); /* clear it: later calls must not report it again */
        return 0;
    }
    return 1;
}

int device_for_rank(int local_rank)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        lawt_die("no CUDA device: cudaGetDeviceCount: %s", cudaGetErrorString(e));
    }
    if (n == 0) lawt_die("no CUDA device: cudaGetDeviceCount: 0 devices");
    long first = 0;
    const char *env = getenv("LAWT_CUDA_DEVICE");
    if (env && *env) {
        char *end;
        first = strtol(env, &end, 10);
        if (*end || first < 0 || first >= n)
            lawt_die("LAWT_CUDA_DEVICE=%s: expected a device ordinal in [0, %d)", env, n);
    }
    return (int)((first + (local_rank > 0 ? local_rank : 0)) % n);
}

int device_select(int local_rank)
{
    int d = device_for_rank(local_rank);
    CUDA_CHECK(cudaSetDevice(d));
    return d;
}

void device_fail(const char *file, int line, const char *call, const char *msg)
{
    lawt_die("CUDA error at %s:%d: %s: %s", file, line, call, msg);
}
