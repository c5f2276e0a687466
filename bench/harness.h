/* harness.h: what the training benchmarks share (bench_train on the CPU, bench_gpu on a GPU):
 * the benchmarked shapes and their FLOP count, lawt's training and greedy-decoding loops run in
 * a child process, the PyTorch reference run as a child, and the Markdown table.
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
 * Every lawt measurement runs in a child process (fork), so that its peak RSS (getrusage
 * ru_maxrss) is its own and a crash is reported, not fatal. */
#ifndef LAWT_BENCH_HARNESS_H
#define LAWT_BENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct {
    const char *name;  /* "(a)" */
    const char *label; /* for the table */
    int enc_layers, dec_layers, dim, heads;
    int S, T, batch; /* framed source and target lengths */
} bench_shape;

model_config shape_config(const bench_shape *sh, int vocab);

typedef struct {
    double enc_linear, enc_attn, dec_linear, dec_attn, out_proj;
    double forward, step;
} flop_count;
/* The formula of the header comment. */
flop_count count_flops(const bench_shape *sh, int vocab);

enum { NGEMM = 4 };

/* What a measuring child sends back. */
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

/* Which model a training or decoding job builds. */
typedef struct {
    const bench_shape *shape;
    int vocab;
    int batch; /* training: the shape's batch; decoding: the batch decoded together */
    int warmup;
    double seconds;
    model_backend backend;
    model_precision precision; /* CUDA only */
    int max_out;               /* decoding: tokens decoded per example */
} lawt_job;

/* Training steps on fresh random tokens for `seconds` after `warmup` untimed steps. */
void job_train(const void *job, measure *r);
/* Greedy decoding of max_out tokens per example (the EOS output bias is set to -1e4, so that
 * every example decodes exactly max_out tokens, as the PyTorch script, which never stops
 * early, does). */
void job_decode(const void *job, measure *r);

/* Forks; the child sets the thread count of OpenBLAS and of the model's pool to threads, runs
 * fn(arg, &m) and sends m back through a pipe. Returns m (ok = 0 when the child failed: why
 * says how). */
measure run_measured(void (*fn)(const void *arg, measure *r), const void *arg, int threads,
                     char *why, size_t whycap);

/* The PyTorch reference's one-line result. */
typedef struct {
    int ok;
    double examples_per_s, tokens_per_s, seconds, rss_mb;
    long steps, params;
    char impl[64];
} py_result;

typedef struct {
    const char *python, *script;
    int threads; /* torch CPU threads (0: torch's default) */
    int warmup;
    const char *device; /* "cpu" or "cuda" */
    const char *amp;    /* "none" or "bf16" */
    int compile;        /* torch.compile */
} py_setup;

/* The script on shape sh with batch rows; tgt_len is what it feeds: it trains on tgt[:, :-1] ->
 * tgt[:, 1:] (T-1 positions, as lawt does for framed length T), and decodes tgt_len - 1
 * positions. */
py_result pytorch_shape(const py_setup *ps, const bench_shape *sh, int vocab, int decode,
                        int batch, int tgt_len, double seconds, char *why, size_t whycap);

/* Finds the reference script: explicit, else <repo>/../shared/bench/pytorch_reference.py, else
 * ../shared/bench/... from the cwd, else the GPU kit's <program's folder>/../bench/... Returns NULL and writes why to note when it (or python) is
 * missing. */
const char *find_pytorch_script(const char *explicit_path, const char *python, char *note,
                                size_t notecap);
int file_exists(const char *path);

/* --only LIST: *flags[k] = 1 for each names[k] in the comma-separated list, 0 for the others;
 * dies naming the unknown word and the allowed ones. */
void parse_only_list(const char *prog, const char *list, const char *const names[], int *flags[],
                     int n);
/* The number in v, which must be > 0, or dies naming prog and flag. */
double positive_arg(const char *prog, const char *flag, const char *v);

/* A growing text (the table, its notes). */
typedef struct {
    char *buf;
    size_t len, cap;
} text;
void tprintf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A row of a lawt | PyTorch | ratio | target table: the ratio is lawt/PyTorch, or its inverse
 * when smaller is better; "n/a" where a side was not measured. */
void table_row(text *t, const char *what, int lok, double lv, int pok, double pv,
               const char *fmt, int smaller_better, const char *target);
/* Appends header, table and notes to path (creating it with a title), and says so. */
void append_results(const char *path, const char *header, const char *table, const char *notes);

#endif
