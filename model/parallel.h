/* parallel.h: a tiny fork-join pool for the CPU backend: matrix products split by rows of the
 * result (each thread calls a single-threaded cblas_sgemm), attention per (example, head),
 * softmaxes, layer norms, Adam. A job is split into contiguous chunks, a pure function of n
 * and the thread count; every chunk writes its own outputs and no reduction crosses a chunk
 * boundary, so which thread runs which chunk does not matter. Results are bit-identical from
 * run to run for a given thread count (the loops other than sgemm even for any thread count;
 * an sgemm on a block of rows can round differently from one on all rows).
 *
 * The pool has as many threads as OpenBLAS had at first use (openblas_get_num_threads(), so
 * OPENBLAS_NUM_THREADS=1 under MPI means no extra thread at all); LAWT_THREADS overrides it.
 * OpenBLAS itself is then set to one thread (and reset to one on every par_threads() call):
 * one pool, no two sets of spinning threads competing for the same cores. A child process
 * forked after the pool started runs single-threaded. */
#ifndef LAWT_MODEL_PARALLEL_H
#define LAWT_MODEL_PARALLEL_H

/* fn(ctx, begin, end, thread) handles tasks [begin, end); thread is in [0, par_threads()). */
typedef void (*par_fn)(void *ctx, int begin, int end, int thread);

/* Runs fn over [0, n) in `chunks` contiguous chunks (chunk k is [n k / chunks, n (k+1) / chunks))
 * and returns when all are done; inline when chunks <= 1 or the pool has one thread. Any
 * thread may run any chunk. Not reentrant: call it from one thread at a time. */
void par_for_chunks(int n, int chunks, par_fn fn, void *ctx);
/* The same with chunks of at least min_chunk tasks, at most 4 per thread. */
void par_for(int n, int min_chunk, par_fn fn, void *ctx);
int par_threads(void);

#endif
