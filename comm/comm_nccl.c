/* comm_nccl.c: see comm_nccl.h. */
#include "comm/comm_nccl.h"

#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "common/common.h"
#include "device/device.h"

struct comm_nccl {
    comm *c;
    ncclComm_t nccl;
    int device;
    double seconds;
};

#define NCCL_CHECK(c, call)                                                                \
    do {                                                                                   \
        ncclResult_t nccl_r_ = (call);                                                     \
        if (nccl_r_ != ncclSuccess)                                                        \
            comm_abort((c), 1, "NCCL error at %s:%d: %s: %s", __FILE__, __LINE__, #call,  \
                       ncclGetErrorString(nccl_r_));                                       \
    } while (0)

int comm_nccl_built(void) { return 1; }

comm_nccl *comm_nccl_init(comm *c)
{
    comm_nccl *n = lawt_calloc(1, sizeof *n);
    n->c = c;
    n->device = device_select(comm_local_rank(c));
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (comm_rank(c) == 0) NCCL_CHECK(c, ncclGetUniqueId(&id));
    comm_broadcast(c, &id, sizeof id, 0);
    NCCL_CHECK(c, ncclCommInitRank(&n->nccl, comm_size(c), id, comm_rank(c)));
    return n;
}

int comm_nccl_device(const comm_nccl *n) { return n->device; }
double comm_nccl_seconds(const comm_nccl *n) { return n->seconds; }

void comm_nccl_free(comm_nccl *n)
{
    if (!n) return;
    NCCL_CHECK(n->c, ncclCommFinalize(n->nccl));
    NCCL_CHECK(n->c, ncclCommDestroy(n->nccl));
    free(n);
}

void comm_allreduce_sum_float_device(comm_nccl *nc, float *dev_buf, size_t n)
{
    double t0 = lawt_now();
    NCCL_CHECK(nc->c, ncclAllReduce(dev_buf, dev_buf, n, ncclFloat, ncclSum, nc->nccl, 0));
    CUDA_CHECK(cudaStreamSynchronize(0));
    nc->seconds += lawt_now() - t0;
}
