/* comm_nccl_stub.c: comm_nccl.h in builds without NCCL (no CUDA toolkit, or NCCL not found).
 * comm_nccl_built() says so, and the trainer then all-reduces over MPI; the other calls are
 * never reached there, and stop the job with a message if they are. */
#include "comm/comm_nccl.h"

#include "common/common.h"

int comm_nccl_built(void) { return 0; }

comm_nccl *comm_nccl_init(comm *c)
{
    comm_abort(c, 1, "NCCL: this build has no NCCL (rebuild with the CUDA toolkit and NCCL)");
}

int comm_nccl_device(const comm_nccl *n)
{
    (void)n;
    return -1;
}

double comm_nccl_seconds(const comm_nccl *n)
{
    (void)n;
    return 0.0;
}

void comm_nccl_free(comm_nccl *n) { (void)n; }

void comm_allreduce_sum_float_device(comm_nccl *nc, float *dev_buf, size_t n)
{
    (void)nc;
    (void)dev_buf;
    lawt_die("NCCL: all-reduce of %zu floats asked of a build without NCCL", n);
}
