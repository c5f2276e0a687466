/* comm_nccl.h: gradient all-reduce on the GPU through NCCL, beside the MPI process group of
 * comm.h. Library lawt_comm_nccl: comm_nccl.c with the CUDA backend and NCCL
 * (LAWT_COMM_HAVE_NCCL), else a stub whose comm_nccl_built() is 0. MPI stays the
 * control plane: rank 0 makes the NCCL unique id and comm_broadcast sends it to every rank;
 * each process drives one GPU, chosen from its local rank by device.h's rule (the one the CUDA
 * model follows). Every NCCL call is checked: a failure aborts the whole job (comm_abort)
 * naming the file, line, call and NCCL's error string; CUDA calls go through device.h's
 * CUDA_CHECK. */
#ifndef LAWT_COMM_NCCL_H
#define LAWT_COMM_NCCL_H

#include <stddef.h>

#include "comm/comm.h"

typedef struct comm_nccl comm_nccl;

/* 1 when this binary has NCCL, 0 in a build without it (then nothing else here may be called). */
int comm_nccl_built(void);

/* Collective over all ranks of c. Selects this rank's GPU (cudaSetDevice) before making the
 * NCCL communicator, so call it before creating the CUDA model. Aborts the job when a rank has
 * no GPU. */
comm_nccl *comm_nccl_init(comm *c);
/* The CUDA device this rank drives. */
int comm_nccl_device(const comm_nccl *n);
/* Collective; frees the NCCL communicator. */
void comm_nccl_free(comm_nccl *n);

/* In-place sum over all ranks of a DEVICE buffer of n floats (ncclAllReduce on the legacy
 * default stream, the CUDA model's stream; returns when the result is in place). The time is
 * counted by comm_nccl_seconds (not by comm_seconds, which counts the MPI reductions). */
void comm_allreduce_sum_float_device(comm_nccl *nc, float *dev_buf, size_t n);
/* Seconds spent inside comm_allreduce_sum_float_device so far. */
double comm_nccl_seconds(const comm_nccl *n);

#endif
