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
 * Data, the training step, the FLOP count and the child processes: bench/harness.h. The table is
 * printed and appended to bench/RESULTS.md with the date, machine, commit and thread count. */
#define _DEFAULT_SOURCE /* sysconf(_SC_NPROCESSORS_ONLN) */

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/harness.h"
#include "bench/machine.h"
#include "common/common.h"
#include "encoding/encoding.h"
#include "model/model.h"

/* ---- the benchmarked shapes ---- */

static const bench_shape SHAPE_A = {"(a)", "eigenvalues 5x5, 4/1 layers, 512 dims, 8 heads",
                                    4, 1, 512, 8, 79, 19, 64};
static const bench_shape SHAPE_B = {"(b)", "transposition 3x3, 1/1 layers, 64 dims, 4 heads",
                                    1, 1, 64, 4, 31, 31, 64};
/* Eigenvalues of a 5x5 matrix: "V5 V1" and 5 coefficients of 3 tokens each. */
enum { DECODE_MAX_OUT = 17 };

typedef struct {
    int threads;
    double seconds_a, seconds_b, seconds_decode;
    int warmup;
    int vocab;
} bench_opts;

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
    /* any values in [0, 1): the speed of a product does not depend on them */
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)(i % 251) / 251.0f;
    for (size_t i = 0; i < (size_t)K * N; i++) Bm[i] = (float)(i % 241) / 241.0f;
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
static void job_sgemm(const void *arg, measure *r)
{
    const bench_opts *o = arg;
    gemm_shape g[NGEMM];
    gemm_shapes(g);
    for (int s = 0; s < NGEMM; s++) r->gemm_gflops[s] = sgemm_gflops(&g[s]);
    openblas_set_num_threads(1);
    r->gemm_one_thread = sgemm_gflops(&g[1]);
    openblas_set_num_threads(o->threads);
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
            o.threads = (int)positive_arg("bench_train", a, v), i++;
        } else if (strcmp(a, "--seconds") == 0) {
            o.seconds_a = positive_arg("bench_train", a, v), i++;
            o.seconds_b = o.seconds_decode = o.seconds_a / 2;
        } else if (strcmp(a, "--seconds-a") == 0) {
            o.seconds_a = positive_arg("bench_train", a, v), i++;
        } else if (strcmp(a, "--seconds-b") == 0) {
            o.seconds_b = positive_arg("bench_train", a, v), i++;
        } else if (strcmp(a, "--seconds-decode") == 0) {
            o.seconds_decode = positive_arg("bench_train", a, v), i++;
        } else if (strcmp(a, "--warmup") == 0) {
            o.warmup = atoi(v), i++;
            if (o.warmup < 0) lawt_die("bench_train: --warmup must be >= 0");
        } else if (strcmp(a, "--rounds") == 0) {
            rounds = atoi(v), i++;
            if (rounds < 1 || rounds > MAX_ROUNDS)
                lawt_die("bench_train: --rounds must be in [1, %d] (got '%s')", MAX_ROUNDS, v);
        } else if (strcmp(a, "--only") == 0) {
            parse_only_list("bench_train", v, (const char *const[]){"sgemm", "a", "b", "decode"},
                            (int *[]){&do_sgemm, &do_a, &do_b, &do_decode}, 4);
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
    if (use_pytorch) script = find_pytorch_script(script, python, pynote, sizeof pynote);
    else snprintf(pynote, sizeof pynote, "PyTorch skipped (--no-pytorch).");
    if (pynote[0]) {
        use_pytorch = 0;
        fprintf(stderr, "bench_train: %s\n", pynote);
    }

    const double load0 = load_average();
    if (load0 > 1.5)
        fprintf(stderr, "bench_train: warning: load average %.2f: timings will be noisy\n", load0);

    char why[128];
    measure sg = {0}, ta = {0}, tb = {0}, d64 = {0}, d1 = {0};
    const py_setup ps = {python, script, o.threads, o.warmup, "cpu", "none", 0};
    py_setup ps1 = ps;
    ps1.threads = 1;
    const lawt_job job_a = {&SHAPE_A, o.vocab, SHAPE_A.batch, o.warmup, o.seconds_a,
                            BACKEND_CPU, PRECISION_FP32, 0};
    const lawt_job job_b = {&SHAPE_B, o.vocab, SHAPE_B.batch, o.warmup, o.seconds_b,
                            BACKEND_CPU, PRECISION_FP32, 0};
    const lawt_job job_d64 = {&SHAPE_A, o.vocab, SHAPE_A.batch, 0, o.seconds_decode,
                              BACKEND_CPU, PRECISION_FP32, DECODE_MAX_OUT};
    const lawt_job job_d1 = {&SHAPE_A, o.vocab, 1, 0, o.seconds_decode / 2, BACKEND_CPU,
                             PRECISION_FP32, DECODE_MAX_OUT};
    py_result pa = {0}, pb = {0}, pb1 = {0}, p64 = {0}, p1 = {0};
    char why_ta[128] = "", why_tb[128] = "", why_d[128] = "", why_p[512] = "";
    const flop_count fa = count_flops(&SHAPE_A, o.vocab), fb = count_flops(&SHAPE_B, o.vocab);
    gemm_shape gs[NGEMM];
    gemm_shapes(gs);

    /* lawt and PyTorch alternate, shape by shape, so that a change in the machine's load hits
     * both sides of a ratio alike. */
    if (do_sgemm) {
        fprintf(stderr, "bench_train: sgemm peak, %d threads\n", o.threads);
        sg = run_measured(job_sgemm, &o, o.threads, why, sizeof why);
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
            ta_round[k] = run_measured(job_train, &job_a, o.threads, why_ta, sizeof why_ta);
            if (use_pytorch)
                pa_round[k] = pytorch_shape(&ps, &SHAPE_A, o.vocab, 0, SHAPE_A.batch, SHAPE_A.T,
                                            o.seconds_a, why, sizeof why);
            if (use_pytorch && !pa_round[k].ok)
                snprintf(why_p + strlen(why_p), sizeof why_p - strlen(why_p), " (a): %s.", why);
        }
        ta = ta_round[median_measure(ta_round, rounds)];
        pa = pa_round[median_py(pa_round, rounds)];
    }
    if (do_b) {
        fprintf(stderr, "bench_train: lawt %s, %.0f s\n", SHAPE_B.name, o.seconds_b);
        tb = run_measured(job_train, &job_b, o.threads, why_tb, sizeof why_tb);
        if (use_pytorch)
            pb = pytorch_shape(&ps, &SHAPE_B, o.vocab, 0, SHAPE_B.batch, SHAPE_B.T, o.seconds_b,
                               why, sizeof why);
        if (use_pytorch && !pb.ok)
            snprintf(why_p + strlen(why_p), sizeof why_p - strlen(why_p), " (b): %s.", why);
        /* PyTorch runs this small model faster on one thread than on two: compare with its
         * best too, so that the ratio is not flattered by its threading overhead. */
        if (use_pytorch && o.threads > 1)
            pb1 = pytorch_shape(&ps1, &SHAPE_B, o.vocab, 0, SHAPE_B.batch, SHAPE_B.T,
                                o.seconds_b, why, sizeof why);
    }
    if (do_decode) {
        /* PyTorch decodes tgt_len - 1 positions: DECODE_MAX_OUT + 1 makes it as many as lawt. */
        fprintf(stderr, "bench_train: lawt decoding, %.0f s\n", o.seconds_decode);
        d64 = run_measured(job_decode, &job_d64, o.threads, why_d, sizeof why_d);
        if (use_pytorch)
            p64 = pytorch_shape(&ps, &SHAPE_A, o.vocab, 1, SHAPE_A.batch, DECODE_MAX_OUT + 1,
                                o.seconds_decode, why, sizeof why);
        if (use_pytorch && !p64.ok)
            snprintf(why_p + strlen(why_p), sizeof why_p - strlen(why_p), " decode: %s.", why);
        d1 = run_measured(job_decode, &job_d1, o.threads, why, sizeof why);
        if (!d1.ok && !why_d[0]) snprintf(why_d, sizeof why_d, "%s", why);
        if (use_pytorch)
            p1 = pytorch_shape(&ps, &SHAPE_A, o.vocab, 1, 1, DECODE_MAX_OUT + 1,
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
        table_row(&t, what, m->ok, m->examples / m->seconds, p->ok, p->examples_per_s, "%.1f", 0,
            targets[k]);
        snprintf(what, sizeof what, "%s train tokens/s (%d+%d per example)", sh->name, sh->S,
                 sh->T);
        table_row(&t, what, m->ok, m->tokens / m->seconds, p->ok, p->tokens_per_s, "%.0f", 0, NULL);
        snprintf(what, sizeof what, "%s step time, ms", sh->name);
        table_row(&t, what, m->ok, 1e3 * m->seconds / (double)(m->steps ? m->steps : 1), p->ok,
            p->examples_per_s > 0 ? 1e3 * sh->batch / p->examples_per_s : 0, "%.1f", 1, NULL);
        snprintf(what, sizeof what, "%s GFLOP/s (%.1f GFLOP a step)", sh->name,
                 (k ? fb : fa).step / 1e9);
        char tgt[64] = "";
        if (peak > 0 && m->ok)
            snprintf(tgt, sizeof tgt, "lawt %.0f%% of sgemm peak", 100 * gl[k] / peak);
        if (peak > 0 && m->ok && p->ok)
            snprintf(tgt, sizeof tgt, "lawt %.0f%%, PyTorch %.0f%% of sgemm peak",
                     100 * gl[k] / peak, 100 * gp[k] / peak);
        table_row(&t, what, m->ok, gl[k], p->ok, gp[k], "%.1f", 0, tgt);
        snprintf(what, sizeof what, "%s peak RSS, MB", sh->name);
        table_row(&t, what, m->ok, m->rss_mb, p->ok, p->rss_mb, "%.0f", 1, NULL);
        if (k == 1 && pb1.ok)
            table_row(&t, "(b) examples/s, PyTorch on 1 thread (its best)", m->ok,
                m->examples / m->seconds, pb1.ok, pb1.examples_per_s, "%.1f", 0, NULL);
    }
    if (do_decode) {
        table_row(&t, "decode (a) batch 64, matrices/s", d64.ok, d64.examples / d64.seconds, p64.ok,
            p64.examples_per_s, "%.1f", 0, NULL);
        table_row(&t, "decode (a) batch 64, tokens decoded/s", d64.ok, d64.tokens / d64.seconds,
            p64.ok, p64.examples_per_s * DECODE_MAX_OUT, "%.0f", 0, NULL);
        table_row(&t, "decode (a) batch 1, ms per matrix", d1.ok, 1e3 * d1.seconds / d1.examples,
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
    run_stamp st;
    run_stamp_now(&st);
    char cpu[256];
    cpu_model_name(cpu, sizeof cpu);
    const char *corename = openblas_get_corename();
    text h = {0};
    tprintf(&h,
            "## bench_train, %s\n\nmachine `%s`, CPU %s, %ld cores; OpenBLAS core %s; %d "
            "threads (lawt pool and OpenBLAS, torch); commit %s%s; load average %.2f at start, "
            "%.2f at end; windows "
            "%.0f s (a, %d round%s), %.0f s (b), %.0f s decoding after %d warm-up steps.\n\n",
            st.date, st.host, cpu, sysconf(_SC_NPROCESSORS_ONLN),
            corename ? corename : "unknown", o.threads, st.commit, st.dirty, load0,
            load_average(),
            o.seconds_a, rounds, rounds > 1 ? "s" : "", o.seconds_b, o.seconds_decode, o.warmup);

    printf("\n%s%s\n%s", h.buf, t.buf, n.buf);
    if (results) append_results(results, h.buf, t.buf, n.buf);
    free(h.buf);
    free(t.buf);
    free(n.buf);
    const int failed = (do_sgemm && !sg.ok) || (do_a && !ta.ok) || (do_b && !tb.ok) ||
                       (do_decode && (!d64.ok || !d1.ok));
    return failed ? 1 : 0;
}
