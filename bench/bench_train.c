/* bench_train: lawt training and greedy-decoding throughput on CPU, side by side with the
 * PyTorch reference (../shared/bench/pytorch_reference.py) on the same shapes and thread count,
 * and the fraction of the machine's sgemm peak (measured in the same run) that training reaches.
 *
 *   (a) eigenvalues 5x5, P1000, 4/1 layers, 512 dims, 8 heads, batch 64, 79 source and 19 target
 *       tokens (with the EOS frames): bound by matrix products;
 *   (b) transposition 3x3, P1000, 1/1 layers, 64 dims, 4 heads, batch 64, 31/31 tokens: small
 *       products, so attention, layer norms, the output softmax and overheads weigh as much;
 *   decoding: greedy, config (a), batch 64 (throughput) and batch 1 (latency), 17 tokens.
 *
 * Data: random tokens of fixed lengths (no padding), fresh for every step, as the PyTorch script
 * does: the cost of a step does not depend on the token values. A training step is the trainer's
 * full step: zero_grad, forward, backward, gradient norm (clipping at 5), Adam.
 *
 * FLOPs of a training step (the linear layers count 2 FLOPs per weight per token; biases,
 * layer norms, softmax and Adam are left out; backward is twice forward):
 *   N = B*S encoder tokens, M = B*(T-1) decoder positions, d = dimension, V = vocabulary,
 *   forward = enc_layers * (2*N*12d^2 + B*4*S^2*d)                  qkv, out, fc1, fc2; QK^T, AV
 *           + dec_layers * (2*M*14d^2 + 2*N*2d^2 + B*4*(T-1)^2*d + B*4*(T-1)*S*d)
 *                                         (self qkv/out, cross q/out, FFN; cross k/v on N;
 *                                          causal scores counted in full; cross scores)
 *           + 2*M*d*V                                               tied output projection
 *   step    = 3 * forward.
 *
 * Every measurement runs in a child process (fork), so that its peak RSS (getrusage ru_maxrss)
 * is its own and a crash of an unfinished model function is reported, not fatal. The table is
 * printed and appended to bench/RESULTS.md with the date, machine, commit and thread count. */
#define _DEFAULT_SOURCE /* wait4 (the PyTorch child's peak RSS), sysconf(_SC_NPROCESSORS_ONLN) */

#include <cblas.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/machine.h"
#include "common/common.h"
#include "encoding/encoding.h"
#include "model/model.h"

#ifndef LAWT_BENCH_RESULTS
#define LAWT_BENCH_RESULTS "bench/RESULTS.md"
#endif
#ifndef LAWT_SOURCE_DIR
#define LAWT_SOURCE_DIR "."
#endif

/* ---- the benchmarked shapes ---- */

typedef struct {
    const char *name;  /* "(a)" */
    const char *label; /* for the table */
    int enc_layers, dec_layers, dim, heads;
    int S, T, batch; /* framed source and target lengths */
} bench_shape;

static const bench_shape SHAPE_A = {"(a)", "eigenvalues 5x5, 4/1 layers, 512 dims, 8 heads",
                                    4, 1, 512, 8, 79, 19, 64};
static const bench_shape SHAPE_B = {"(b)", "transposition 3x3, 1/1 layers, 64 dims, 4 heads",
                                    1, 1, 64, 4, 31, 31, 64};
/* Eigenvalues of a 5x5 matrix: "V5 V1" and 5 coefficients of 3 tokens each. */
enum { DECODE_MAX_OUT = 17 };

static model_config shape_config(const bench_shape *sh, int vocab)
{
    model_config c = {
        .enc_layers = sh->enc_layers, .dec_layers = sh->dec_layers,
        .enc_dim = sh->dim, .dec_dim = sh->dim,
        .enc_heads = sh->heads, .dec_heads = sh->heads,
        .vocab_in = vocab, .vocab_out = vocab,
        .max_len = sh->S > sh->T ? sh->S : sh->T,
    };
    return c;
}

typedef struct {
    double enc_linear, enc_attn, dec_linear, dec_attn, out_proj;
    double forward, step;
} flop_count;

/* The formula of the header comment. */
static flop_count count_flops(const bench_shape *sh, int vocab)
{
    const double B = sh->batch, S = sh->S, Tq = sh->T - 1, d = sh->dim, V = vocab;
    const double N = B * S, M = B * Tq;
    flop_count f;
    f.enc_linear = sh->enc_layers * 2.0 * N * 12.0 * d * d;
    f.enc_attn = sh->enc_layers * B * 4.0 * S * S * d;
    f.dec_linear = sh->dec_layers * (2.0 * M * 14.0 * d * d + 2.0 * N * 2.0 * d * d);
    f.dec_attn = sh->dec_layers * B * (4.0 * Tq * Tq * d + 4.0 * Tq * S * d);
    f.out_proj = 2.0 * M * d * V;
    f.forward = f.enc_linear + f.enc_attn + f.dec_linear + f.dec_attn + f.out_proj;
    f.step = 3.0 * f.forward;
    return f;
}

/* ---- what a measuring child sends back ---- */

enum { NGEMM = 4 };

typedef struct {
    int ok;
    long steps;           /* timed training steps, or decode calls */
    double seconds;       /* the timed window */
    double examples;      /* examples trained, or matrices decoded */
    double tokens;        /* source + target tokens trained, or tokens decoded */
    double rss_mb;        /* peak RSS of the measuring process */
    double loss_first, loss_last; /* mean token loss of the first and last timed steps */
    double fwd_s, bwd_s, opt_s;   /* time in zero_grad + forward, backward, norm + Adam */
    double decoder_steps; /* decoding: decoder positions run per call, averaged */
    double gemm_gflops[NGEMM];
    double gemm_one_thread; /* the fc1 forward shape on one thread */
    long params;
} measure;

typedef struct {
    int threads;
    double seconds_a, seconds_b, seconds_decode;
    int warmup;
    int vocab;
} bench_opts;

/* xorshift64*: tokens only need to be arbitrary, not good random numbers. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* B sequences of exactly len framed tokens: EOS, random words (never PAD or EOS), EOS. */
static void random_framed(int *tok, int *len, int B, int L, int vocab, uint64_t *rng)
{
    for (int b = 0; b < B; b++) {
        int *t = tok + (size_t)b * L;
        t[0] = TOK_EOS;
        for (int i = 1; i < L - 1; i++)
            t[i] = TOK_FIRST_DIM + (int)(rng_next(rng) % (uint64_t)(vocab - TOK_FIRST_DIM));
        t[L - 1] = TOK_EOS;
        len[b] = L;
    }
}

/* ---- child jobs ---- */

typedef struct {
    int M, N, K;
    CBLAS_TRANSPOSE ta, tb;
    char label[64];
} gemm_shape;

/* 1024^3, then config (a)'s FFN products: forward fc1 (B*S, d) x (d, 4d) as linear_forward
 * calls it (weight transposed), forward fc2 (B*S, 4d) x (4d, d), and the fc1 weight gradient
 * (4d, B*S) x (B*S, d) as linear_backward calls it. */
static void gemm_shapes(gemm_shape g[NGEMM])
{
    const int NB = SHAPE_A.batch * SHAPE_A.S, d = SHAPE_A.dim;
    g[0] = (gemm_shape){1024, 1024, 1024, CblasNoTrans, CblasNoTrans, ""};
    snprintf(g[0].label, sizeof g[0].label, "1024x1024x1024");
    g[1] = (gemm_shape){NB, 4 * d, d, CblasNoTrans, CblasTrans, ""};
    snprintf(g[1].label, sizeof g[1].label, "fc1 fwd %dx%d * %dx%d^T", NB, d, 4 * d, d);
    g[2] = (gemm_shape){NB, d, 4 * d, CblasNoTrans, CblasTrans, ""};
    snprintf(g[2].label, sizeof g[2].label, "fc2 fwd %dx%d * %dx%d^T", NB, 4 * d, d, 4 * d);
    g[3] = (gemm_shape){4 * d, d, NB, CblasTrans, CblasNoTrans, ""};
    snprintf(g[3].label, sizeof g[3].label, "fc1 dW %dx%d^T * %dx%d", NB, 4 * d, NB, d);
}

/* Best GFLOP/s of a product over several repetitions, after one untimed call. */
static double sgemm_gflops(const gemm_shape *g)
{
    const int M = g->M, N = g->N, K = g->K;
    float *A = lawt_malloc((size_t)M * K * sizeof(float));
    float *Bm = lawt_malloc((size_t)K * N * sizeof(float));
    float *C = lawt_malloc((size_t)M * N * sizeof(float));
    uint64_t rng = 42;
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)(rng_next(&rng) >> 40) * 0x1p-24f;
    for (size_t i = 0; i < (size_t)K * N; i++) Bm[i] = (float)(rng_next(&rng) >> 40) * 0x1p-24f;
    const int lda = g->ta == CblasNoTrans ? K : M;
    const int ldb = g->tb == CblasNoTrans ? N : K;
    double best = 1e300, total = 0;
    for (int rep = 0; rep < 12 && (rep < 6 || total < 1.0); rep++) {
        double t0 = lawt_now();
        cblas_sgemm(CblasRowMajor, g->ta, g->tb, M, N, K, 1.0f, A, lda, Bm, ldb, 0.0f, C, N);
        double dt = lawt_now() - t0;
        if (rep > 0 && dt < best) best = dt; /* rep 0 warms caches and the thread pool */
        total += dt;
    }
    free(A);
    free(Bm);
    free(C);
    return 2.0 * M * N * K / best / 1e9;
}

/* Every shape with the training thread count, then the fc1 shape on one thread: the model
 * splits its products among its own threads, each calling a one-thread sgemm, so threads x the
 * one-thread figure is the other ceiling worth knowing. */
static void job_sgemm(const bench_opts *o, measure *r)
{
    gemm_shape g[NGEMM];
    gemm_shapes(g);
    for (int s = 0; s < NGEMM; s++) r->gemm_gflops[s] = sgemm_gflops(&g[s]);
    openblas_set_num_threads(1);
    r->gemm_one_thread = sgemm_gflops(&g[1]);
    openblas_set_num_threads(o->threads);
}

typedef struct {
    int *src, *src_len, *tgt, *tgt_len;
    model_batch batch;
} batch_buf;

static void batch_alloc(batch_buf *bb, const bench_shape *sh)
{
    bb->src = lawt_malloc((size_t)sh->batch * sh->S * sizeof(int));
    bb->tgt = lawt_malloc((size_t)sh->batch * sh->T * sizeof(int));
    bb->src_len = lawt_malloc((size_t)sh->batch * sizeof(int));
    bb->tgt_len = lawt_malloc((size_t)sh->batch * sizeof(int));
    bb->batch = (model_batch){sh->batch, sh->S, sh->T, bb->src, bb->src_len, bb->tgt, bb->tgt_len};
}

static void batch_free(batch_buf *bb)
{
    free(bb->src);
    free(bb->tgt);
    free(bb->src_len);
    free(bb->tgt_len);
}

/* One trainer step (as trainer/ does it: clip the gradient norm at 5, Adam at lr 1e-4); adds
 * the time of its three phases to r and returns the mean token loss. */
static double train_step(model *m, const model_batch *b, long step, measure *r)
{
    static const adam_hparams H = {1e-4f, 0.9f, 0.999f, 1e-8f};
    double t0 = lawt_now();
    model_zero_grad(m);
    long nt = 0;
    double loss = model_forward(m, b, &nt);
    double t1 = lawt_now();
    model_backward(m, b, 1.0f / (float)(nt > 0 ? nt : 1));
    double t2 = lawt_now();
    double norm = model_grad_norm(m);
    model_adam_step(m, &H, step, norm > 5.0 ? (float)(5.0 / norm) : 1.0f);
    double t3 = lawt_now();
    r->fwd_s += t1 - t0;
    r->bwd_s += t2 - t1;
    r->opt_s += t3 - t2;
    return loss / (double)(nt > 0 ? nt : 1);
}

static void job_train(const bench_shape *sh, const bench_opts *o, double seconds, measure *r)
{
    model_config cfg = shape_config(sh, o->vocab);
    model *m = model_create(&cfg, BACKEND_CPU, sh->batch);
    model_init_params(m, 1);
    r->params = (long)model_num_params(m);
    batch_buf bb;
    batch_alloc(&bb, sh);
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    long step = 0;
    for (int w = 0; w < o->warmup; w++) {
        random_framed(bb.src, bb.src_len, sh->batch, sh->S, o->vocab, &rng);
        random_framed(bb.tgt, bb.tgt_len, sh->batch, sh->T, o->vocab, &rng);
        train_step(m, &bb.batch, ++step, r);
    }
    r->fwd_s = r->bwd_s = r->opt_s = 0;
    double t0 = lawt_now(), elapsed = 0;
    do {
        /* fresh tokens every step, inside the window, as the PyTorch script does */
        random_framed(bb.src, bb.src_len, sh->batch, sh->S, o->vocab, &rng);
        random_framed(bb.tgt, bb.tgt_len, sh->batch, sh->T, o->vocab, &rng);
        double loss = train_step(m, &bb.batch, ++step, r);
        if (r->steps == 0) r->loss_first = loss;
        r->loss_last = loss;
        r->steps++;
        elapsed = lawt_now() - t0;
    } while (elapsed < seconds);
    r->seconds = elapsed;
    r->examples = (double)r->steps * sh->batch;
    r->tokens = r->examples * (sh->S + sh->T);
    batch_free(&bb);
    model_free(m);
}

/* Random weights would often pick EOS first and end a decode early; a very negative output
 * bias on EOS makes every example decode exactly max_out tokens, so that the work per call is
 * fixed and equal to the PyTorch script's (which never stops early). */
static void forbid_eos(model *m)
{
    const model_config *c = model_get_config(m);
    int n = model_tensors(c, NULL, 0);
    model_tensor *t = lawt_malloc((size_t)n * sizeof *t);
    model_tensors(c, t, n);
    float *p = lawt_malloc(model_num_params(m) * sizeof(float));
    model_copy_out(m, BUF_PARAMS, p);
    int found = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].name, "dec.out_bias") == 0) {
            p[t[i].offset + TOK_EOS] = -1e4f;
            found = 1;
        }
    if (!found) lawt_die("bench_train: no tensor named dec.out_bias");
    model_copy_in(m, BUF_PARAMS, p);
    free(p);
    free(t);
}

typedef struct {
    int batch;
    double seconds;
} decode_arg;

static void job_decode(const decode_arg *a, const bench_opts *o, measure *r)
{
    const bench_shape *sh = &SHAPE_A;
    model_config cfg = shape_config(sh, o->vocab);
    model *m = model_create(&cfg, BACKEND_CPU, a->batch);
    model_init_params(m, 1);
    forbid_eos(m);
    r->params = (long)model_num_params(m);
    const int B = a->batch, S = sh->S;
    int *src = lawt_malloc((size_t)B * S * sizeof(int));
    int *src_len = lawt_malloc((size_t)B * sizeof(int));
    int *out = lawt_malloc((size_t)B * DECODE_MAX_OUT * sizeof(int));
    int *out_len = lawt_malloc((size_t)B * sizeof(int));
    uint64_t rng = 0x243F6A8885A308D3ULL;
    random_framed(src, src_len, B, S, o->vocab, &rng);
    model_greedy_decode(m, src, src_len, B, S, DECODE_MAX_OUT, out, out_len); /* warm-up */
    double t0 = lawt_now(), elapsed = 0, positions = 0;
    do {
        random_framed(src, src_len, B, S, o->vocab, &rng);
        model_greedy_decode(m, src, src_len, B, S, DECODE_MAX_OUT, out, out_len);
        /* the decoder runs every row until the longest output ends (or EOS is chosen there) */
        int longest = 0;
        for (int b = 0; b < B; b++) {
            r->tokens += out_len[b];
            if (out_len[b] > longest) longest = out_len[b];
        }
        positions += longest < DECODE_MAX_OUT ? longest + 1 : DECODE_MAX_OUT;
        r->steps++;
        elapsed = lawt_now() - t0;
    } while (elapsed < a->seconds);
    r->seconds = elapsed;
    r->examples = (double)r->steps * B;
    r->decoder_steps = positions / (double)r->steps;
    free(src);
    free(src_len);
    free(out);
    free(out_len);
    model_free(m);
}

/* ---- running a job in a child process ---- */

typedef enum { JOB_SGEMM, JOB_TRAIN_A, JOB_TRAIN_B, JOB_DECODE_64, JOB_DECODE_1 } job_kind;

static void run_job_here(job_kind k, const bench_opts *o, measure *r)
{
    switch (k) {
    case JOB_SGEMM: job_sgemm(o, r); break;
    case JOB_TRAIN_A: job_train(&SHAPE_A, o, o->seconds_a, r); break;
    case JOB_TRAIN_B: job_train(&SHAPE_B, o, o->seconds_b, r); break;
    case JOB_DECODE_64: {
        decode_arg a = {SHAPE_A.batch, o->seconds_decode};
        job_decode(&a, o, r);
        break;
    }
    case JOB_DECODE_1: {
        decode_arg a = {1, o->seconds_decode / 2};
        job_decode(&a, o, r);
        break;
    }
    }
}

/* Describes how a child ended, for the table: "" when it exited with status 0. */
static void describe_status(int status, char *why, size_t cap)
{
    why[0] = '\0';
    if (WIFSIGNALED(status)) snprintf(why, cap, "killed by signal %d", WTERMSIG(status));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        snprintf(why, cap, "exited with status %d", WEXITSTATUS(status));
}

/* Forks; the child sets the OpenBLAS thread count, measures, and writes its measure through a
 * pipe. Returns the measure (ok = 0 when the child failed: why says how). */
static measure run_job(job_kind k, const bench_opts *o, char *why, size_t whycap)
{
    measure r;
    memset(&r, 0, sizeof r);
    int fd[2];
    if (pipe(fd) != 0) lawt_die("bench_train: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) lawt_die("bench_train: fork: %s", strerror(errno));
    if (pid == 0) {
        close(fd[0]);
        /* The model's thread pool sizes itself from OpenBLAS's thread count at first use,
         * unless LAWT_THREADS says otherwise: set both, so that --threads is what runs. */
        char nth[16];
        snprintf(nth, sizeof nth, "%d", o->threads);
        setenv("LAWT_THREADS", nth, 1);
        openblas_set_num_threads(o->threads);
        run_job_here(k, o, &r);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        r.rss_mb = (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
        r.ok = 1;
        const char *p = (const char *)&r;
        size_t left = sizeof r;
        while (left > 0) {
            ssize_t w = write(fd[1], p, left);
            if (w <= 0) _exit(3);
            p += w;
            left -= (size_t)w;
        }
        fflush(NULL);
        _exit(0);
    }
    close(fd[1]);
    measure got;
    char *p = (char *)&got;
    size_t have = 0;
    while (have < sizeof got) {
        ssize_t n = read(fd[0], p + have, sizeof got - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += (size_t)n;
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    describe_status(status, why, whycap);
    if (have == sizeof got && got.ok && why[0] == '\0') return got;
    if (why[0] == '\0') snprintf(why, whycap, "no result");
    return r;
}

/* ---- the PyTorch reference ---- */

typedef struct {
    int ok;
    double examples_per_s, tokens_per_s, seconds, rss_mb;
    long steps, params;
    char impl[64];
} py_result;

/* The value of key=... in a line of key=value pairs, or NULL. */
static const char *kv_find(const char *line, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += kl)
        if ((p == line || p[-1] == ' ') && p[kl] == '=') return p + kl + 1;
    return NULL;
}

/* Runs python script with args (NULL-terminated, after the script), captures its stdout,
 * parses its one-line result; peak RSS from wait4's rusage of that child alone. */
static py_result run_pytorch(const char *python, const char *script, char *const args[],
                             char *why, size_t whycap)
{
    py_result r;
    memset(&r, 0, sizeof r);
    why[0] = '\0';
    char *argv[48];
    int n = 0;
    argv[n++] = (char *)python;
    argv[n++] = (char *)script;
    for (int i = 0; args[i] && n < 47; i++) argv[n++] = args[i];
    argv[n] = NULL;
    fprintf(stderr, "bench_train: running");
    for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "\n");
    int fd[2];
    if (pipe(fd) != 0) lawt_die("bench_train: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) lawt_die("bench_train: fork: %s", strerror(errno));
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], STDOUT_FILENO);
        close(fd[1]);
        execv(python, argv);
        fprintf(stderr, "bench_train: cannot run %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    char out[16384];
    size_t have = 0;
    for (;;) {
        ssize_t k = read(fd[0], out + have, sizeof out - 1 - have);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        have += (size_t)k;
        if (have == sizeof out - 1) have = 0; /* keep reading; only the last line matters */
    }
    out[have] = '\0';
    close(fd[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    describe_status(status, why, whycap);
    if (why[0]) return r;
    const char *line = strstr(out, "impl=");
    const char *eps = line ? kv_find(line, "examples_per_s") : NULL;
    if (!eps) {
        snprintf(why, whycap, "no examples_per_s in its output");
        return r;
    }
    r.examples_per_s = atof(eps);
    const char *v;
    if ((v = kv_find(line, "tokens_per_s"))) r.tokens_per_s = atof(v);
    if ((v = kv_find(line, "seconds"))) r.seconds = atof(v);
    if ((v = kv_find(line, "steps"))) r.steps = atol(v);
    if ((v = kv_find(line, "params"))) r.params = atol(v);
    if ((v = kv_find(line, "impl"))) sscanf(v, "%63s", r.impl);
    r.rss_mb = (double)ru.ru_maxrss / 1024.0;
    r.ok = 1;
    return r;
}

/* The PyTorch script's arguments for a shape. tgt_len is what it feeds: it trains on
 * tgt[:, :-1] -> tgt[:, 1:] (T-1 positions, as lawt does for framed length T), and decodes
 * tgt_len - 1 positions. */
static py_result pytorch_shape(const char *python, const char *script, const bench_shape *sh,
                               const bench_opts *o, int decode, int batch, int tgt_len,
                               double seconds, char *why, size_t whycap)
{
    char a[9][32];
    snprintf(a[0], 32, "%d", sh->enc_layers);
    snprintf(a[1], 32, "%d", sh->dec_layers);
    snprintf(a[2], 32, "%d", sh->dim);
    snprintf(a[3], 32, "%d", sh->heads);
    snprintf(a[4], 32, "%d", sh->S);
    snprintf(a[5], 32, "%d", tgt_len);
    snprintf(a[6], 32, "%d", o->vocab);
    snprintf(a[7], 32, "%d", batch);
    snprintf(a[8], 32, "%g", seconds);
    char threads[16], warm[16];
    snprintf(threads, sizeof threads, "%d", o->threads);
    snprintf(warm, sizeof warm, "%d", decode ? 1 : o->warmup);
    char *args[] = {"--enc-layers", a[0], "--dec-layers", a[1], "--dim", a[2], "--heads", a[3],
                    "--src-len", a[4], "--tgt-len", a[5], "--vocab", a[6], "--batch", a[7],
                    "--seconds", a[8], "--threads", threads, "--warmup-steps", warm,
                    decode ? "--decode" : NULL, NULL};
    return run_pytorch(python, script, args, why, whycap);
}

static int file_exists(const char *path) { return access(path, R_OK) == 0; }

/* ---- the table ---- */

typedef struct {
    char *buf;
    size_t len, cap;
} text;

static void tprintf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = (t->len + (size_t)n + 1) * 2;
        char *nb = realloc(t->buf, t->cap);
        if (!nb) lawt_die("bench_train: out of memory");
        t->buf = nb;
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* "12.3" or "n/a"/the reason when not measured. */
static const char *num(char *buf, size_t cap, int ok, double v, const char *fmt)
{
    if (ok) snprintf(buf, cap, fmt, v);
    else snprintf(buf, cap, "n/a");
    return buf;
}

/* A row: lawt value, PyTorch value, and their ratio (lawt/PyTorch, or its inverse when smaller
 * is better), plus a target column. */
static void row(text *t, const char *what, int lok, double lv, int pok, double pv,
                const char *fmt, int smaller_better, const char *target)
{
    char a[32], b[32], c[32];
    num(a, sizeof a, lok, lv, fmt);
    num(b, sizeof b, pok, pv, fmt);
    if (lok && pok && lv > 0 && pv > 0)
        snprintf(c, sizeof c, "%.2fx", smaller_better ? pv / lv : lv / pv);
    else
        snprintf(c, sizeof c, "-");
    tprintf(t, "| %s | %s | %s | %s | %s |\n", what, a, b, c, target ? target : "");
}

/* ---- main ---- */

enum { MAX_ROUNDS = 9 };

/* Index of the median rate (failed runs count as 0, the lower middle for an even count). */
static int median_index(const double *rate, int n)
{
    int rank_of[MAX_ROUNDS];
    for (int i = 0; i < n; i++) {
        rank_of[i] = 0;
        for (int j = 0; j < n; j++)
            rank_of[i] += rate[j] < rate[i] || (rate[j] == rate[i] && j < i);
    }
    for (int i = 0; i < n; i++)
        if (rank_of[i] == (n - 1) / 2) return i;
    return 0;
}

static int median_measure(const measure *m, int n)
{
    double rate[MAX_ROUNDS] = {0};
    for (int i = 0; i < n; i++) rate[i] = m[i].ok ? m[i].examples / m[i].seconds : 0;
    return median_index(rate, n);
}

static int median_py(const py_result *p, int n)
{
    double rate[MAX_ROUNDS] = {0};
    for (int i = 0; i < n; i++) rate[i] = p[i].ok ? p[i].examples_per_s : 0;
    return median_index(rate, n);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_train [options]\n"
            "Training and greedy-decoding throughput of lawt on CPU next to the PyTorch\n"
            "reference on the same shapes and threads; appends the table to bench/RESULTS.md.\n"
            "  (a) eigenvalues 5x5 P1000, 4/1 layers, 512 dims, 8 heads, batch 64, 79/19 tokens\n"
            "  (b) transposition 3x3 P1000, 1/1 layers, 64 dims, 4 heads, batch 64, 31/31 tokens\n"
            "  decoding: config (a), greedy, %d tokens, batch 64 and batch 1\n"
            "options:\n"
            "  --threads N        OpenBLAS threads, and torch threads (default 2)\n"
            "  --seconds S        timed window of (a) (default 20); (b) and decoding get S/2\n"
            "  --seconds-a S, --seconds-b S, --seconds-decode S   set one window\n"
            "  --warmup N         untimed training steps before the window (default 3)\n"
            "  --rounds N         (a) measured N times, lawt and PyTorch alternating; the\n"
            "                     table shows each side's median, the notes every round\n"
            "                     (default 3)\n"
            "  --only LIST        comma-separated subset of sgemm,a,b,decode (default all)\n"
            "  --pytorch PATH     the reference script (default: <repo>/../shared/bench/\n"
            "                     pytorch_reference.py, then ../shared/bench/... from the cwd)\n"
            "  --python PATH      interpreter (default /usr/bin/python3)\n"
            "  --no-pytorch       lawt only\n"
            "  --results PATH     where to append the table (default %s)\n"
            "  --no-results       print only\n"
            "  --help             this text\n",
            DECODE_MAX_OUT, LAWT_BENCH_RESULTS);
}

/* --only sgemm,a,b,decode: each listed part runs, the others do not. */
static void parse_only(const char *list, int *sgemm, int *a, int *b, int *decode)
{
    *sgemm = *a = *b = *decode = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        if (strcmp(w, "sgemm") == 0) *sgemm = 1;
        else if (strcmp(w, "a") == 0) *a = 1;
        else if (strcmp(w, "b") == 0) *b = 1;
        else if (strcmp(w, "decode") == 0) *decode = 1;
        else lawt_die("bench_train: --only takes a list of sgemm,a,b,decode (got '%s')", w);
    }
}

static double positive_arg(const char *flag, const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (*end || !(x > 0)) lawt_die("bench_train: %s needs a positive number (got '%s')", flag, v);
    return x;
}

int main(int argc, char **argv)
{
    bench_opts o = {.threads = 2, .seconds_a = 20, .seconds_b = 10, .seconds_decode = 10,
                    .warmup = 3};
    int rounds = 3;
    const char *results = LAWT_BENCH_RESULTS, *script = NULL, *python = "/usr/bin/python3";
    int use_pytorch = 1, do_sgemm = 1, do_a = 1, do_b = 1, do_decode = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--no-pytorch") == 0) {
            use_pytorch = 0;
        } else if (strcmp(a, "--no-results") == 0) {
            results = NULL;
        } else if (!v) {
            usage(stderr);
            lawt_die("bench_train: unknown option or missing value: '%s'", a);
        } else if (strcmp(a, "--threads") == 0) {
            o.threads = (int)positive_arg(a, v), i++;
        } else if (strcmp(a, "--seconds") == 0) {
            o.seconds_a = positive_arg(a, v), i++;
            o.seconds_b = o.seconds_decode = o.seconds_a / 2;
        } else if (strcmp(a, "--seconds-a") == 0) {
            o.seconds_a = positive_arg(a, v), i++;
        } else if (strcmp(a, "--seconds-b") == 0) {
            o.seconds_b = positive_arg(a, v), i++;
        } else if (strcmp(a, "--seconds-decode") == 0) {
            o.seconds_decode = positive_arg(a, v), i++;
        } else if (strcmp(a, "--warmup") == 0) {
            o.warmup = atoi(v), i++;
            if (o.warmup < 0) lawt_die("bench_train: --warmup must be >= 0");
        } else if (strcmp(a, "--rounds") == 0) {
            rounds = atoi(v), i++;
            if (rounds < 1 || rounds > MAX_ROUNDS)
                lawt_die("bench_train: --rounds must be in [1, %d] (got '%s')", MAX_ROUNDS, v);
        } else if (strcmp(a, "--only") == 0) {
            parse_only(v, &do_sgemm, &do_a, &do_b, &do_decode);
            i++;
        } else if (strcmp(a, "--pytorch") == 0) {
            script = v, i++;
        } else if (strcmp(a, "--python") == 0) {
            python = v, i++;
        } else if (strcmp(a, "--results") == 0) {
            results = v, i++;
        } else {
            usage(stderr);
            lawt_die("bench_train: unknown option '%s'", a);
        }
    }

    lawt_encoding enc;
    if (encoding_from_name("P1000", &enc) != 0) lawt_die("bench_train: no P1000 encoding");
    lawt_vocab vocab;
    vocab_init(&vocab, &enc);
    o.vocab = vocab.size;
    vocab_free(&vocab);

    /* Where the reference script is: --pytorch, else next to the repository, else from cwd. */
    char pynote[512] = "";
    static char found[4096];
    if (use_pytorch && !script) {
        snprintf(found, sizeof found, "%s/../shared/bench/pytorch_reference.py", LAWT_SOURCE_DIR);
        if (file_exists(found)) script = found;
        else if (file_exists("../shared/bench/pytorch_reference.py"))
            script = "../shared/bench/pytorch_reference.py";
    }
    if (!use_pytorch) snprintf(pynote, sizeof pynote, "PyTorch skipped (--no-pytorch).");
    else if (!script || !file_exists(script))
        snprintf(pynote, sizeof pynote, "PyTorch skipped: %.400s not found.",
                 script ? script : "../shared/bench/pytorch_reference.py");
    else if (!file_exists(python))
        snprintf(pynote, sizeof pynote, "PyTorch skipped: no interpreter %.400s.", python);
    if (pynote[0]) {
        use_pytorch = 0;
        fprintf(stderr, "bench_train: %s\n", pynote);
    }

    const double load0 = load_average();
    if (load0 > 1.5)
        fprintf(stderr, "bench_train: warning: load average %.2f: timings will be noisy\n", load0);

    char why[128];
    measure sg = {0}, ta = {0}, tb = {0}, d64 = {0}, d1 = {0};
    py_result pa = {0}, pb = {0}, pb1 = {0}, p64 = {0}, p1 = {0};
    char why_ta[128] = "", why_tb[128] = "", why_d[128] = "", why_p[512] = "";
    const flop_count fa = count_flops(&SHAPE_A, o.vocab), fb = count_flops(&SHAPE_B, o.vocab);
    gemm_shape gs[NGEMM];
    gemm_shapes(gs);

    /* lawt and PyTorch alternate, shape by shape, so that a change in the machine's load hits
     * both sides of a ratio alike. */
    if (do_sgemm) {
        fprintf(stderr, "bench_train: sgemm peak, %d threads\n", o.threads);
        sg = run_job(JOB_SGEMM, &o, why, sizeof why);
        if (!sg.ok) fprintf(stderr, "bench_train: sgemm: %s\n", why);
    }
    /* (a) decides a target by a ratio of two rates on a shared machine: several alternating
     * rounds, each side's median in the table. */
    measure ta_round[MAX_ROUNDS] = {{0}};
    py_result pa_round[MAX_ROUNDS] = {{0}};
    if (do_a) {
        for (int k = 0; k < rounds; k++) {
            fprintf(stderr, "bench_train: lawt %s, %.0f s (round %d of %d)\n", SHAPE_A.name,
                    o.seconds_a, k + 1, rounds);
            ta_round[k] = run_job(JOB_TRAIN_A, &o, why_ta, sizeof why_ta);
            if (use_pytorch)
                pa_round[k] = pytorch_shape(python, script, &SHAPE_A, &o, 0, SHAPE_A.batch,
                                            SHAPE_A.T, o.seconds_a, why, sizeof why);
            if (use_pytorch && !pa_round[k].ok)
                snprintf(why_p + strlen(why_p), sizeof why_p - strlen(why_p), " (a): %s.", why);
        }
        ta = ta_round[median_measure(ta_round, rounds)];
        pa = pa_round[median_py(pa_round, rounds)];
    }
    if (do_b) {
        fprintf(stderr, "bench_train: lawt %s, %.0f s\n", SHAPE_B.name, o.seconds_b);
        tb = run_job(JOB_TRAIN_B, &o, why_tb, sizeof why_tb);
        if (use_pytorch)
            pb = pytorch_shape(python, script, &SHAPE_B, &o, 0, SHAPE_B.batch, SHAPE_B.T,
                               o.seconds_b, why, sizeof why);
        if (use_pytorch && !pb.ok)
            snprintf(why_p + strlen(why_p), sizeof why_p - strlen(why_p), " (b): %s.", why);
        /* PyTorch runs this small model faster on one thread than on two: compare with its
         * best too, so that the ratio is not flattered by its threading overhead. */
        if (use_pytorch && o.threads > 1) {
            bench_opts one = o;
            one.threads = 1;
            pb1 = pytorch_shape(python, script, &SHAPE_B, &one, 0, SHAPE_B.batch, SHAPE_B.T,
                                o.seconds_b, why, sizeof why);
        }
    }
    if (do_decode) {
        /* PyTorch decodes tgt_len - 1 positions: DECODE_MAX_OUT + 1 makes it as many as lawt. */
        fprintf(stderr, "bench_train: lawt decoding, %.0f s\n", o.seconds_decode);
        d64 = run_job(JOB_DECODE_64, &o, why_d, sizeof why_d);
        if (use_pytorch)
            p64 = pytorch_shape(python, script, &SHAPE_A, &o, 1, SHAPE_A.batch,
                                DECODE_MAX_OUT + 1, o.seconds_decode, why, sizeof why);
        if (use_pytorch && !p64.ok)
            snprintf(why_p + strlen(why_p), sizeof why_p - strlen(why_p), " decode: %s.", why);
        d1 = run_job(JOB_DECODE_1, &o, why, sizeof why);
        if (!d1.ok && !why_d[0]) snprintf(why_d, sizeof why_d, "%s", why);
        if (use_pytorch)
            p1 = pytorch_shape(python, script, &SHAPE_A, &o, 1, 1, DECODE_MAX_OUT + 1,
                               o.seconds_decode / 2, why, sizeof why);
        if (use_pytorch && !p1.ok)
            snprintf(why_p + strlen(why_p), sizeof why_p - strlen(why_p), " decode b=1: %s.",
                     why);
    }

    /* ---- derived numbers ---- */
    double peak = 0;
    for (int s = 0; s < NGEMM; s++)
        if (sg.ok && sg.gemm_gflops[s] > peak) peak = sg.gemm_gflops[s];
    const double ga = ta.ok ? fa.step * ta.steps / ta.seconds / 1e9 : 0;
    const double gb = tb.ok ? fb.step * tb.steps / tb.seconds / 1e9 : 0;
    const double pga = pa.ok ? fa.step * pa.examples_per_s / SHAPE_A.batch / 1e9 : 0;
    const double pgb = pb.ok ? fb.step * pb.examples_per_s / SHAPE_B.batch / 1e9 : 0;

    text t = {0};
    tprintf(&t, "| measure | lawt | PyTorch | lawt/PyTorch | target |\n|---|---:|---:|---:|---|\n");
    const bench_shape *shapes[2] = {&SHAPE_A, &SHAPE_B};
    const measure *tm[2] = {&ta, &tb};
    const py_result *pm[2] = {&pa, &pb};
    const double gl[2] = {ga, gb}, gp[2] = {pga, pgb};
    const int done[2] = {do_a, do_b};
    const char *targets[2] = {">= 1.3x", ">= 5x"};
    for (int k = 0; k < 2; k++) {
        if (!done[k]) continue;
        const bench_shape *sh = shapes[k];
        const measure *m = tm[k];
        const py_result *p = pm[k];
        char what[160];
        snprintf(what, sizeof what, "%s train %s, examples/s", sh->name, sh->label);
        row(&t, what, m->ok, m->examples / m->seconds, p->ok, p->examples_per_s, "%.1f", 0,
            targets[k]);
        snprintf(what, sizeof what, "%s train tokens/s (%d+%d per example)", sh->name, sh->S,
                 sh->T);
        row(&t, what, m->ok, m->tokens / m->seconds, p->ok, p->tokens_per_s, "%.0f", 0, NULL);
        snprintf(what, sizeof what, "%s step time, ms", sh->name);
        row(&t, what, m->ok, 1e3 * m->seconds / (double)(m->steps ? m->steps : 1), p->ok,
            p->examples_per_s > 0 ? 1e3 * sh->batch / p->examples_per_s : 0, "%.1f", 1, NULL);
        snprintf(what, sizeof what, "%s GFLOP/s (%.1f GFLOP a step)", sh->name,
                 (k ? fb : fa).step / 1e9);
        char tgt[64] = "";
        if (peak > 0 && m->ok)
            snprintf(tgt, sizeof tgt, "lawt %.0f%% of sgemm peak", 100 * gl[k] / peak);
        if (peak > 0 && m->ok && p->ok)
            snprintf(tgt, sizeof tgt, "lawt %.0f%%, PyTorch %.0f%% of sgemm peak",
                     100 * gl[k] / peak, 100 * gp[k] / peak);
        row(&t, what, m->ok, gl[k], p->ok, gp[k], "%.1f", 0, tgt);
        snprintf(what, sizeof what, "%s peak RSS, MB", sh->name);
        row(&t, what, m->ok, m->rss_mb, p->ok, p->rss_mb, "%.0f", 1, NULL);
        if (k == 1 && pb1.ok)
            row(&t, "(b) examples/s, PyTorch on 1 thread (its best)", m->ok,
                m->examples / m->seconds, pb1.ok, pb1.examples_per_s, "%.1f", 0, NULL);
    }
    if (do_decode) {
        row(&t, "decode (a) batch 64, matrices/s", d64.ok, d64.examples / d64.seconds, p64.ok,
            p64.examples_per_s, "%.1f", 0, NULL);
        row(&t, "decode (a) batch 64, tokens decoded/s", d64.ok, d64.tokens / d64.seconds,
            p64.ok, p64.examples_per_s * DECODE_MAX_OUT, "%.0f", 0, NULL);
        row(&t, "decode (a) batch 1, ms per matrix", d1.ok, 1e3 * d1.seconds / d1.examples,
            p1.ok, p1.examples_per_s > 0 ? 1e3 / p1.examples_per_s : 0, "%.1f", 1, NULL);
    }

    /* ---- notes under the table ---- */
    text n = {0};
    if (sg.ok) {
        tprintf(&n, "- sgemm (%d threads, best of reps):", o.threads);
        for (int s = 0; s < NGEMM; s++)
            tprintf(&n, "%s %s %.1f GFLOP/s", s ? ";" : "", gs[s].label, sg.gemm_gflops[s]);
        tprintf(&n, ". Peak used: %.1f GFLOP/s. One thread, fc1 fwd: %.1f GFLOP/s (x%d = %.1f).\n",
                peak, sg.gemm_one_thread, o.threads, sg.gemm_one_thread * o.threads);
        /* Two threads that do not beat one by a wide margin mean that another process holds a
         * core: every number of this run is then a shared-machine number. */
        if (o.threads > 1 && sg.gemm_gflops[1] < 1.3 * sg.gemm_one_thread)
            tprintf(&n, "- WARNING: the %d-thread sgemm is only %.2fx the one-thread one: the "
                    "cores were shared with other work during this run, so the peak (and every "
                    "timing) is low and the fractions of peak are flattered.\n",
                    o.threads, sg.gemm_gflops[1] / sg.gemm_one_thread);
    } else if (do_sgemm) {
        tprintf(&n, "- sgemm: failed (%s).\n", why);
    }
    for (int k = 0; k < 2; k++) {
        const measure *m = tm[k];
        if (!done[k]) continue;
        if (!m->ok) {
            tprintf(&n, "- lawt %s: failed (%s).\n", shapes[k]->name, k ? why_tb : why_ta);
            continue;
        }
        const double st = (double)m->steps;
        tprintf(&n,
                "- lawt %s: %ld params, %ld steps in %.1f s; per step forward %.1f ms, backward "
                "%.1f ms, grad norm + Adam %.1f ms; mean token loss %.3f -> %.3f.\n",
                shapes[k]->name, m->params, m->steps, m->seconds, 1e3 * m->fwd_s / st,
                1e3 * m->bwd_s / st, 1e3 * m->opt_s / st, m->loss_first, m->loss_last);
        if (pm[k]->ok)
            tprintf(&n, "- PyTorch %s: %s, %ld params, %ld steps in %.1f s.\n", shapes[k]->name,
                    pm[k]->impl, pm[k]->params, pm[k]->steps, pm[k]->seconds);
    }
    if (do_a && rounds > 1) {
        tprintf(&n, "- (a) rounds, examples/s lawt / PyTorch (ratio):");
        for (int k = 0; k < rounds; k++) {
            const measure *m = &ta_round[k];
            const py_result *p = &pa_round[k];
            double lr = m->ok ? m->examples / m->seconds : 0, pr = p->ok ? p->examples_per_s : 0;
            tprintf(&n, "%s %.1f / %.1f", k ? ";" : "", lr, pr);
            if (lr > 0 && pr > 0) tprintf(&n, " (%.2fx)", lr / pr);
        }
        tprintf(&n, ". The table shows the median round of each side.\n");
    }
    if (do_a && ta.ok)
        tprintf(&n,
                "- (a) FLOPs per step = 3 x forward; forward %.1f GFLOP = encoder linear %.1f + "
                "encoder attention %.2f + decoder linear %.2f + decoder attention %.2f + output "
                "projection %.2f.\n",
                fa.forward / 1e9, fa.enc_linear / 1e9, fa.enc_attn / 1e9, fa.dec_linear / 1e9,
                fa.dec_attn / 1e9, fa.out_proj / 1e9);
    if (do_decode) {
        if (d64.ok && d1.ok)
            tprintf(&n,
                    "- decoding: random weights with the EOS output bias set to -1e4, so that "
                    "every example decodes exactly %d tokens (lawt: %.1f decoder positions per "
                    "call on average, KV cache); PyTorch decodes %d positions without a cache "
                    "(recomputing the prefix). Each call includes the encoder. Batch 1: %.1f "
                    "matrices/s.\n",
                    DECODE_MAX_OUT, d64.decoder_steps, DECODE_MAX_OUT,
                    d1.examples / d1.seconds);
        else
            tprintf(&n, "- lawt decoding: failed (%s).\n", why_d);
    }
    if (why_p[0]) tprintf(&n, "- PyTorch failed:%s\n", why_p);
    if (pynote[0]) tprintf(&n, "- %s\n", pynote);
    tprintf(&n,
            "- Data: random tokens of fixed lengths, fresh each step (both sides); no padding. "
            "Vocabulary %d (P1000) in and out. A step: zero_grad, forward, backward, grad norm "
            "(clip 5), Adam.\n",
            o.vocab);

    /* ---- header: date, machine, commit, threads ---- */
    char date[64], commit[64], dirty[64], cpu[256], host[256];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&now));
    first_line_of("git -C " LAWT_SOURCE_DIR " rev-parse --short HEAD 2>/dev/null", commit,
                  sizeof commit);
    first_line_of("git -C " LAWT_SOURCE_DIR " status --porcelain 2>/dev/null | head -1", dirty,
                  sizeof dirty);
    cpu_model_name(cpu, sizeof cpu);
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    const char *corename = openblas_get_corename();
    text h = {0};
    tprintf(&h,
            "## bench_train, %s\n\nmachine `%s`, CPU %s, %ld cores; OpenBLAS core %s; %d "
            "threads (lawt pool and OpenBLAS, torch); commit %s%s; load average %.2f at start, "
            "%.2f at end; windows "
            "%.0f s (a, %d round%s), %.0f s (b), %.0f s decoding after %d warm-up steps.\n\n",
            date, host, cpu, sysconf(_SC_NPROCESSORS_ONLN), corename ? corename : "unknown",
            o.threads, commit, strcmp(dirty, "unknown") ? " + uncommitted changes" : "", load0,
            load_average(),
            o.seconds_a, rounds, rounds > 1 ? "s" : "", o.seconds_b, o.seconds_decode, o.warmup);

    printf("\n%s%s\n%s", h.buf, t.buf, n.buf);
    if (results) {
        int existed = file_exists(results);
        FILE *f = fopen(results, "a");
        if (!f) lawt_die("bench_train: cannot append to %s: %s", results, strerror(errno));
        if (!existed) fprintf(f, "# lawt benchmark results\n");
        fprintf(f, "\n%s%s\n%s", h.buf, t.buf, n.buf);
        fclose(f);
        printf("\nappended to %s\n", results);
    }
    free(h.buf);
    free(t.buf);
    free(n.buf);
    const int failed = (do_sgemm && !sg.ok) || (do_a && !ta.ok) || (do_b && !tb.ok) ||
                       (do_decode && (!d64.ok || !d1.ok));
    return failed ? 1 : 0;
}
