/* comm.h: the process group of a data-parallel run. The MPI implementation (comm.c) works for
 * one process started without mpirun too (a singleton); a build without MPI (LAWT_WITH_MPI=OFF)
 * has comm_single.c instead: one process, rank 0 of 1. NCCL reductions of GPU buffers sit
 * beside it (comm_nccl.h).
 * Every call is checked: an MPI error aborts the whole job with file, line and MPI's message. */
#ifndef LAWT_COMM_H
#define LAWT_COMM_H

#include <stddef.h>

typedef struct comm comm;

/* MPI_Init (thread level funneled) and the error handlers; local rank from the MPI/Slurm
 * environment (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID) or a shared-memory split. */
comm *comm_init(int *argc, char ***argv);
/* Collective: a barrier, then MPI_Finalize. A process that exits between comm_init and
 * comm_finalize (lawt_die, exit) aborts the whole job with a message naming its rank. */
void comm_finalize(comm *c);
int comm_rank(const comm *c);
int comm_size(const comm *c);
int comm_local_rank(const comm *c);
/* Number of ranks on this node (the shared-memory group of comm_local_rank). */
int comm_local_size(const comm *c);

/* In-place sums over all ranks, in one call per buffer (gradients are one flat buffer). */
void comm_allreduce_sum_float(comm *c, float *buf, size_t n);
void comm_allreduce_sum_double(comm *c, double *buf, size_t n);
void comm_allreduce_sum_long(comm *c, long *buf, size_t n);
/* In-place mean over ranks of a float buffer. */
void comm_allreduce_mean_float(comm *c, float *buf, size_t n);
void comm_broadcast(comm *c, void *buf, size_t bytes, int root);
/* Broadcasts a NUL-terminated string of any length from root; returns a malloc'd copy on
 * every rank (the caller frees it). */
char *comm_broadcast_string(comm *c, const char *s, int root);
void comm_barrier(comm *c);
/* 1 on every rank if any rank passed flag != 0 (a logical OR), e.g. "a stop signal arrived". */
int comm_any(comm *c, int flag);
/* Brings the whole job down: prints "lawt: rank R: <message>" and calls MPI_Abort. */
void comm_abort(comm *c, int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
/* Seconds spent inside the reductions so far (for the share of step time in communication). */
double comm_seconds(const comm *c);

/* Stop signals (Slurm preemption or time limit, scancel, a user's kill): SIGTERM and SIGUSR1
 * only set a flag; the trainer polls it once a step, agrees on it with
 * comm_any(c, comm_stop_requested()) so every rank stops at the same step, writes a
 * checkpoint and exits with COMM_EXIT_STOPPED. Call after comm_init (it replaces the
 * default action, termination, of both signals in this process). */
void comm_install_stop_signals(void);
int comm_stop_requested(void);
/* The number of the last stop signal received (SIGTERM or SIGUSR1), 0 when none. */
int comm_stop_signal(void);
/* Exit status of a run that stopped on a signal after writing its checkpoint: EX_TEMPFAIL,
 * "try again later"; the jobs/slurm batch scripts requeue the job on it. */
#define COMM_EXIT_STOPPED 75

/* For tests: the largest number of elements (or bytes, for broadcasts) one MPI call moves;
 * longer buffers are split (MPI counts are ints). The default is 1 << 28. */
void comm_set_max_chunk(comm *c, size_t elements);

#endif
