/* parallel.c: the fork-join pool of parallel.h.
 *
 * A job is split into a fixed number of chunks (a function of n and the thread count only);
 * the caller and the workers claim chunks one at a time from a shared counter until none is
 * left, so a worker that the OS does not schedule in time simply leaves its share to the others
 * (on a busy machine the caller then does everything itself instead of waiting). Which thread
 * runs a chunk never changes its result: chunks write disjoint outputs.
 *
 * The counter packs (job generation, number of chunks, next chunk) in one 64-bit atomic, so
 * that a claim (a compare-and-swap of the whole word) succeeds only while its job is still the
 * current one and not finished: a late worker can never run a chunk of a replaced job, nor
 * read the parameters of the next one as those of its own. Workers spin briefly after a job (the
 * next one usually follows at once), then sleep on a condition variable. OpenBLAS runs
 * single-threaded inside the pool, so the pool is the only set of threads of ours. */
#include "model/parallel.h"
#include "model/model.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/common.h"

#define PAR_MAX_THREADS 64
#define PAR_SPIN 1000            /* pause iterations a worker spins before sleeping */
#define PAR_CHUNKS_PER_THREAD 4 /* for par_for: load balance and stragglers */

static struct {
    int n; /* threads, the caller included */
    pthread_t th[PAR_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint64_t claim; /* generation << 32 | chunks << 16 | next chunk */
    atomic_int done;        /* chunks finished in the current job */
    /* the job; atomics (relaxed) because a late worker may read them while the next job is
     * being set up: it then fails to claim and discards what it read */
    _Atomic(par_fn) fn;
    _Atomic(void *) ctx;
    atomic_int total;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static int requested_threads; /* model_set_threads(), before the pool starts */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claims and runs chunks of job `gen` until none is left. */
static void run_chunks(uint32_t gen, int me)
{
    for (;;) {
        uint64_t w = atomic_load_explicit(&pool.claim, memory_order_acquire);
        if ((uint32_t)(w >> 32) != gen) return;
        int k = (int)(w & 0xffff);
        long chunks = (long)((w >> 16) & 0xffff);
        if (k >= chunks) return;
        par_fn fn = atomic_load_explicit(&pool.fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&pool.ctx, memory_order_relaxed);
        long total = atomic_load_explicit(&pool.total, memory_order_relaxed);
        /* the claim succeeds only if the job is still `gen` with chunk k < chunks next: the
         * job cannot have completed, so fn, ctx and total read above were its own */
        if (!atomic_compare_exchange_weak_explicit(&pool.claim, &w, w + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        int begin = (int)(total * k / chunks), end = (int)(total * (k + 1) / chunks);
        if (end > begin) fn(ctx, begin, end, me);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    }
}

static void *worker(void *arg)
{
    const int me = (int)(long)arg;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g = (uint32_t)(atomic_load_explicit(&pool.claim, memory_order_acquire) >> 32);
        for (int s = 0; s < PAR_SPIN && g == seen; s++) {
            cpu_relax();
            g = (uint32_t)(atomic_load_explicit(&pool.claim, memory_order_acquire) >> 32);
        }
        if (g == seen) {
            pthread_mutex_lock(&pool.mu);
            while ((g = (uint32_t)(atomic_load_explicit(&pool.claim, memory_order_acquire) >>
                                   32)) == seen)
                pthread_cond_wait(&pool.cv, &pool.mu);
            pthread_mutex_unlock(&pool.mu);
        }
        seen = g;
        run_chunks(g, me);
    }
    return NULL;
}

/* A forked child has only the forking thread: it runs everything inline. */
static void pool_after_fork_child(void)
{
    pool.n = 1;
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv, NULL);
}

static void pool_init(void)
{
    pthread_atfork(NULL, NULL, pool_after_fork_child);
    int n = requested_threads > 0 ? requested_threads : openblas_get_num_threads();
    const char *env = getenv("LAWT_THREADS");
    if (requested_threads <= 0 && env && atoi(env) > 0) n = atoi(env);
    if (n < 1) n = 1;
    if (n > PAR_MAX_THREADS) n = PAR_MAX_THREADS;
    /* BLAS runs inside our threads, single-threaded */
    openblas_set_num_threads(1);
    pool.n = 1;
    for (int i = 1; i < n; i++) {
        if (pthread_create(&pool.th[i], NULL, worker, (void *)(long)i)) break;
        pthread_detach(pool.th[i]);
        pool.n = i + 1;
    }
}

void model_set_threads(int n)
{
    requested_threads = n;
}

int par_threads(void)
{
    pthread_once(&pool_once, pool_init);
    /* someone may have raised OpenBLAS's own threads since: our threads call it concurrently */
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    return pool.n;
}

void par_for_chunks(int n, int chunks, par_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (chunks > n) chunks = n;
    if (chunks > 0xffff) chunks = 0xffff;
    if (chunks <= 1 || par_threads() == 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool.ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&pool.total, n, memory_order_relaxed);
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    uint32_t gen = (uint32_t)(atomic_load_explicit(&pool.claim, memory_order_relaxed) >> 32) + 1;
    pthread_mutex_lock(&pool.mu);
    atomic_store_explicit(&pool.claim, (uint64_t)gen << 32 | (uint64_t)chunks << 16,
                          memory_order_release);
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    run_chunks(gen, 0);
    /* chunks still running elsewhere: spin a little, then give the core to their thread */
    for (int s = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < chunks; s++) {
        if (s < PAR_SPIN) cpu_relax();
        else sched_yield();
    }
}

void par_for(int n, int min_chunk, par_fn fn, void *ctx)
{
    if (min_chunk < 1) min_chunk = 1;
    int chunks = n / min_chunk, cap = par_threads() * PAR_CHUNKS_PER_THREAD;
    par_for_chunks(n, chunks < cap ? chunks : cap, fn, ctx);
}
