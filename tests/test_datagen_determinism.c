/* test_datagen_determinism: example i is a pure function of (seed, stream, i): the same bits
 * from 1, 2 or 4 producer threads (contiguous or interleaved index ranges, either order), from
 * call to call; different streams and seeds give different examples. */
#include <cblas.h>

#include "datagen/datagen.h"
#include "tests/test.h"

#include <pthread.h>
#include <string.h>

#define COUNT 400
#define MAX_COEFFS (13 * 12) /* eigenvectors 12x12: a 13x12 output */
#define MAX_TOKENS 2048

typedef struct {
    lawt_task task;
    int in_rows, in_cols, out_rows, out_cols;
    double in[MAX_COEFFS], out[MAX_COEFFS];
    int src_len, tgt_len;
    int src[MAX_TOKENS], tgt[MAX_TOKENS];
} record;

typedef struct {
    const datagen_config *cfg;
    const lawt_vocab *v;
    datagen_stream stream;
    uint64_t seed;
    record *records;      /* indexed by example number */
    int first, step, end; /* this producer makes first, first + step, ... below end */
    int reverse;
} producer;

static void make(const producer *p, int i)
{
    record *r = &p->records[i];
    lawt_matrix in = {0, 0, r->in}, out = {0, 0, r->out};
    datagen_tokens(p->cfg, p->v, p->v, p->seed, p->stream, (uint64_t)i, r->src, &r->src_len, r->tgt,
                   &r->tgt_len, &in, &out, &r->task);
    r->in_rows = in.rows;
    r->in_cols = in.cols;
    r->out_rows = out.rows;
    r->out_cols = out.cols;
}

static void *produce(void *arg)
{
    const producer *p = arg;
    int last = p->first + (p->end - 1 - p->first) / p->step * p->step;
    if (p->reverse)
        for (int i = last; i >= p->first; i -= p->step) make(p, i);
    else
        for (int i = p->first; i < p->end; i += p->step) make(p, i);
    return NULL;
}

/* `threads` producers; interleaved: example i goes to thread i % threads, else each thread
 * makes one contiguous block (as MPI ranks would). */
static void run(producer base, int threads, int interleaved)
{
    memset(base.records, 0, sizeof(record) * COUNT);
    pthread_t tid[4];
    producer prod[4];
    int block = COUNT / threads;
    for (int t = 0; t < threads; t++) {
        prod[t] = base;
        prod[t].first = interleaved ? t : t * block;
        prod[t].step = interleaved ? threads : 1;
        prod[t].end = interleaved ? COUNT : (t + 1) * block;
        CHECK(pthread_create(&tid[t], NULL, produce, &prod[t]) == 0);
    }
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
}

static int same(const record *a, const record *b)
{
    return a->task == b->task && a->in_rows == b->in_rows && a->in_cols == b->in_cols &&
           a->out_rows == b->out_rows && a->out_cols == b->out_cols &&
           memcmp(a->in, b->in, sizeof(double) * (size_t)a->in_rows * a->in_cols) == 0 &&
           memcmp(a->out, b->out, sizeof(double) * (size_t)a->out_rows * a->out_cols) == 0 &&
           a->src_len == b->src_len && a->tgt_len == b->tgt_len &&
           memcmp(a->src, b->src, sizeof(int) * (size_t)a->src_len) == 0 &&
           memcmp(a->tgt, b->tgt, sizeof(int) * (size_t)a->tgt_len) == 0;
}

static int count_same(const record *a, const record *b)
{
    int n = 0;
    for (int i = 0; i < COUNT; i++) n += same(&a[i], &b[i]);
    return n;
}

/* Same input matrix (shape and coefficients)? */
static int same_input(const record *a, const record *b)
{
    return a->in_rows == b->in_rows && a->in_cols == b->in_cols &&
           memcmp(a->in, b->in, sizeof(double) * (size_t)a->in_rows * a->in_cols) == 0;
}

/* Prints OpenBLAS's thread count before datagen's first call, after it, then FNV-1a of the
 * unrounded outputs of eigenvectors and SVD at 30x30, whose LAPACK calls go through the BLAS
 * level 2 that OpenBLAS threads. The datagen_openblas_threads test runs it with
 * OPENBLAS_NUM_THREADS=1 and 2: the second must start with two threads (else there is nothing
 * to compare), datagen must leave one, and the hashes must agree. */
static int print_hash(void)
{
    int threads_before = openblas_get_num_threads();
    static double in[30 * 30], out[61 * 30];
    uint64_t h = 1469598103934665603ull;
    for (int t = 0; t < 2; t++) {
        datagen_config cfg;
        char err[256];
        datagen_default(&cfg);
        datagen_set(&cfg, "task", t ? "svd" : "eigenvectors", err, sizeof err);
        datagen_set(&cfg, "dim", "30", err, sizeof err);
        cfg.out_digits = 0;
        for (uint64_t i = 0; i < 100; i++) {
            lawt_matrix a = {0, 0, in}, b = {0, 0, out};
            datagen_example(&cfg, 5, STREAM_TRAIN, i, &a, &b, NULL);
            const unsigned char *p = (const unsigned char *)out;
            for (size_t k = 0; k < sizeof(double) * (size_t)b.rows * b.cols; k++) {
                h ^= p[k];
                h *= 1099511628211ull;
            }
        }
    }
    printf("%d %d %016llx\n", threads_before, openblas_get_num_threads(),
           (unsigned long long)h);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--hash") == 0) return print_hash();
    /* A mix that exercises every source of randomness: several tasks, variable sizes,
     * eigenvalue-law mixtures, noise; then the other tasks' LAPACK paths. */
    static const struct {
        const char *task, *dim, *eig_law;
        double noise;
    } CONFIGS[] = {
        {"transpose,add,matvec,matmul,singularvalues,svd,inversion", "2-6", NULL, 0.02},
        {"eigenvalues,eigenvectors", "3-12",
         "semicircle:1,positive:1,uniform:1,gaussian:1,"
         "laplace:1,marchenko_pastur:1",
         0.01},
        {"eigenvectors", "5", NULL, 0},
    };
    lawt_encoding enc;
    encoding_from_name("P1000", &enc);
    lawt_vocab v;
    vocab_init(&v, &enc);
    record *ref = malloc(sizeof(record) * COUNT), *got = malloc(sizeof(record) * COUNT);
    for (size_t c = 0; c < sizeof CONFIGS / sizeof CONFIGS[0]; c++) {
        datagen_config cfg;
        char err[256];
        datagen_default(&cfg);
        if (datagen_set(&cfg, "task", CONFIGS[c].task, err, sizeof err) != 0 ||
            datagen_set(&cfg, "dim", CONFIGS[c].dim, err, sizeof err) != 0 ||
            (CONFIGS[c].eig_law &&
             datagen_set(&cfg, "eig_law", CONFIGS[c].eig_law, err, sizeof err) != 0) ||
            datagen_validate(&cfg, err, sizeof err) != 0) {
            fprintf(stderr, "bad test config: %s\n", err);
            return 1;
        }
        cfg.noise = CONFIGS[c].noise;
        CHECK(datagen_max_input_coeffs(&cfg) <= MAX_COEFFS &&
              datagen_max_output_coeffs(&cfg) <= MAX_COEFFS);
        CHECK(datagen_max_src_len(&cfg, &enc) <= MAX_TOKENS &&
              datagen_max_tgt_len(&cfg, &enc) <= MAX_TOKENS);

        producer base = {&cfg, &v, STREAM_TRAIN, 42, ref, 0, 1, COUNT, 0};
        run(base, 1, 0);
        base.records = got;
        run(base, 1, 0); /* identical across calls */
        CHECK_MSG(count_same(ref, got) == COUNT, "config %zu: a second call differs", c);
        base.reverse = 1;
        run(base, 1, 0);
        CHECK_MSG(count_same(ref, got) == COUNT, "config %zu: reverse order differs", c);
        for (int threads = 2; threads <= 4; threads *= 2)
            for (int interleaved = 0; interleaved <= 1; interleaved++) {
                run(base, threads, interleaved);
                CHECK_MSG(count_same(ref, got) == COUNT, "config %zu: %d %s producers differ", c,
                          threads, interleaved ? "interleaved" : "contiguous");
            }

        /* Other streams and seeds: different examples, and no input of the test stream is
         * one of the training stream's. */
        base.reverse = 0;
        base.stream = STREAM_TEST;
        run(base, 2, 1);
        int shared = 0;
        for (int i = 0; i < COUNT; i++)
            for (int j = 0; j < COUNT; j++) shared += same_input(&ref[i], &got[j]);
        CHECK_MSG(shared == 0, "config %zu: %d test inputs are training inputs", c, shared);
        base.stream = STREAM_OOD;
        run(base, 2, 1);
        CHECK_MSG(count_same(ref, got) == 0, "config %zu: the OOD stream repeats the training one",
                  c);
        base.stream = STREAM_TRAIN;
        base.seed = 43;
        run(base, 2, 1);
        CHECK_MSG(count_same(ref, got) == 0, "config %zu: seed 43 repeats seed 42", c);
    }
    free(ref);
    free(got);
    vocab_free(&v);
    return test_report("test_datagen_determinism");
}
