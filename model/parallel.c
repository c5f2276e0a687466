/* parallel.c: the fork-join pool of parallel.h. Workers spin ~100 microseconds after a job
 * (the next one usually follows at once), then sleep on a condition variable, so that they
 * do not burn a core for nothing between steps. OpenBLAS runs single-threaded inside the pool,
 * so a spinning worker never competes with BLAS threads of our own. */
#include "model/parallel.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/common.h"

#define PAR_MAX_THREADS 64
#define PAR_SPIN 4000

static struct {
    int n; /* threads, the caller included */
    pthread_t th[PAR_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    atomic_uint gen;
    atomic_int pending;
    par_fn fn;
    void *ctx;
    int total, parts;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .cv_start = PTHREAD_COND_INITIALIZER,
          .cv_done = PTHREAD_COND_INITIALIZER};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_part(int part)
{
    if (part >= pool.parts) return;
    long n = pool.total;
    int begin = (int)(n * part / pool.parts), end = (int)(n * (part + 1) / pool.parts);
    if (end > begin) pool.fn(pool.ctx, begin, end, part);
}

static void *worker(void *arg)
{
    const int me = (int)(long)arg;
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&pool.gen, memory_order_acquire);
        for (int s = 0; s < PAR_SPIN && g == seen; s++) {
            cpu_relax();
            g = atomic_load_explicit(&pool.gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&pool.mu);
            while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen)
                pthread_cond_wait(&pool.cv_start, &pool.mu);
            pthread_mutex_unlock(&pool.mu);
        }
        seen = g;
        run_part(me);
        if (atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.cv_done);
            pthread_mutex_unlock(&pool.mu);
        }
    }
    return NULL;
}

/* A forked child has only the forking thread: it runs everything inline. */
static void pool_after_fork_child(void)
{
    pool.n = 1;
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv_start, NULL);
    pthread_cond_init(&pool.cv_done, NULL);
}

static void pool_init(void)
{
    pthread_atfork(NULL, NULL, pool_after_fork_child);
    int n = openblas_get_num_threads();
    const char *env = getenv("LAWT_THREADS");
    if (env && atoi(env) > 0) n = atoi(env);
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

int par_threads(void)
{
    pthread_once(&pool_once, pool_init);
    /* someone may have raised OpenBLAS's own threads since: our threads call it concurrently */
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    return pool.n;
}

void par_for(int n, int min_chunk, par_fn fn, void *ctx)
{
    if (n <= 0) return;
    int threads = par_threads();
    if (min_chunk < 1) min_chunk = 1;
    int parts = n / min_chunk;
    if (parts > threads) parts = threads;
    if (parts <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.total = n;
    pool.parts = parts;
    atomic_store_explicit(&pool.pending, threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&pool.mu);
    atomic_fetch_add_explicit(&pool.gen, 1, memory_order_release);
    pthread_cond_broadcast(&pool.cv_start);
    pthread_mutex_unlock(&pool.mu);
    run_part(0);
    for (int s = 0; s < 20 * PAR_SPIN; s++) {
        if (atomic_load_explicit(&pool.pending, memory_order_acquire) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&pool.mu);
    while (atomic_load_explicit(&pool.pending, memory_order_acquire) != 0)
        pthread_cond_wait(&pool.cv_done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
}
