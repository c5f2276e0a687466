/* test_nccl.c: the NCCL all-reduce of device buffers (comm_nccl.h) at any number of ranks, one
 * GPU each: rank r contributes r + 1 + i / n to element i; every element must equal the exact
 * sum over ranks. Exits 77 (skipped) when this machine has no CUDA device. */
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime_api.h>

#include "comm/comm.h"
#include "comm/comm_nccl.h"

int main(int argc, char **argv)
{
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("test_nccl: skipped: no CUDA device\n");
        return 77;
    }
    comm *c = comm_init(&argc, &argv);
    comm_nccl *nc = comm_nccl_init(c);
    const size_t n = 1000003;
    const int rank = comm_rank(c), size = comm_size(c);
    float *h = malloc(n * sizeof(float)), *d = NULL;
    for (size_t i = 0; i < n; i++) h[i] = (float)(rank + 1) + (float)(i % 8) * 0.25f;
    if (cudaMalloc((void **)&d, n * sizeof(float)) != cudaSuccess ||
        cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess)
        comm_abort(c, 1, "test_nccl: cudaMalloc/cudaMemcpy failed");
    comm_allreduce_sum_float_device(nc, d, n);
    if (cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess)
        comm_abort(c, 1, "test_nccl: cudaMemcpy failed");
    long bad = 0;
    const float ranks = (float)size * (float)(size + 1) / 2.0f;
    for (size_t i = 0; i < n; i++)
        if (h[i] != ranks + (float)size * (float)(i % 8) * 0.25f) bad++;
    long all_bad = bad;
    comm_allreduce_sum_long(c, &all_bad, 1);
    if (rank == 0)
        printf("test_nccl: %d ranks, device %d on rank 0, %ld wrong elements, %.3f ms\n", size,
               comm_nccl_device(nc), all_bad, 1e3 * comm_nccl_seconds(nc));
    cudaFree(d);
    free(h);
    comm_nccl_free(nc);
    comm_finalize(c);
    return all_bad == 0 ? 0 : 1;
}
