/* bench_comm: data-parallel training throughput over MPI on CPU ranks, and the share of a step
 * spent in communication (issue 4's target: the gradient all-reduce of a 25M-parameter model
 * costs < 5% of a step at 2 ranks).
 *
 *   mpirun -np N bench_comm [options] --row FILE   one measurement: rank 0 writes FILE
 *   bench_comm --report FILE...                    the table of the rows, appended to RESULTS.md
 *   bench/run_bench_comm.sh                        both, for np = 1 and 2
 *
 * The model: 6/1 layers, 512 dims, 8 heads, P1000 vocabulary (1314 in and out), max_len 79:
 * 24.5M parameters (Appendix G's count). The shape of the paper's eigenvalues of 5x5 matrices:
 * 79 source and 19 target tokens with the EOS frames, global batch 64 (32 per rank at np = 2).
 *
 * A step is the trainer's data-parallel step (trainer/train.c, train_step), with model.h only:
 * every rank builds its share of the global batch (examples step * global + rank * local + j,
 * random tokens of fixed lengths from a counter-based hash: the same global batch for any
 * number of ranks), zero_grad, forward, an all-reduce of the token counts (the loss scale needs
 * the global count before backward), backward, the model's gradient buffer summed over ranks
 * in place in ONE comm_allreduce_sum_float, an all-reduce of the loss, the gradient norm (clipping at 5), Adam. At np = 1 there is no communication, as
 * in the trainer.
 *
 * Reported per step (mean over the timed steps):
 *   - step: wall time on rank 0, from a barrier before the first timed step to the end of the
 *     last (ranks run unsynchronised in between, as in training); examples/s = global batch /
 *     step;
 *   - in collectives: comm_seconds() per step, the largest over ranks, and its share of the
 *     step. It includes the time a rank waits in a collective for a slower rank (imbalance, the
 *     other engineers' processes on this shared machine), not only the transfer;
 *   - gradient all-reduce: the time inside the one big comm_allreduce_sum_float (and the loss's
 *     one-double all-reduce after it: trainer_step's all-reduce phase), on the rank
 *     that arrives last (the smallest over ranks: the transfer with the least waiting), and its
 *     share of the step: the number the target is about;
 *   - raw all-reduce: comm_allreduce_sum_float of num_params floats after a barrier, reps times,
 *     with no training around it: min and median over reps of the slowest rank's time, and the
 *     algorithmic bandwidth (bytes / time).
 * Each rank runs one thread (OPENBLAS_NUM_THREADS=1, so the model's pool has one thread too):
 * np = 1 uses one core, np = 2 both cores of this machine. */
#define _DEFAULT_SOURCE /* sysconf(_SC_NPROCESSORS_ONLN) */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/machine.h"
#include "comm/comm.h"
#include "common/common.h"
#include "encoding/encoding.h"
#include "model/model.h"
#include "trainer/trainer.h"

typedef struct {
    int global_batch, steps, warmup, reps;
    int enc_layers, dec_layers, dim, heads, S, T;
    char encoding[16];
    const char *row; /* rank 0 writes its row here */
    int allreduce_only; /* no training: only the raw all-reduce (of floats, or the model's size) */
    long floats;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mpirun -np N bench_comm [--global-batch 64] [--steps 3] [--warmup 1]\n"
            "           [--enc-layers 6] [--dec-layers 1] [--dim 512] [--heads 8] [--encoding P1000]\n"
            "           [--src-len 79] [--tgt-len 19] [--allreduce-reps 10] [--row FILE]\n"
            "       mpirun -np N bench_comm --allreduce-only [--floats N] [--allreduce-reps 10] [model options]\n"
            "       bench_comm --report [--results FILE | --no-append] [--note TEXT] ROW_FILE...\n"
            "Data-parallel training throughput and the share of a step in communication; the\n"
            "report prints the table of the rows and appends it to %s.\n",
            LAWT_BENCH_RESULTS);
}

static int int_arg(const char *name, const char *v, int lo)
{
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || x < lo || x > (1L << 30)) {
        fprintf(stderr, "bench_comm: %s needs an integer >= %d\n", name, lo);
        exit(2);
    }
    return (int)x;
}

/* ---- the batch: random tokens of fixed lengths from a counter-based hash ---- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* "EOS tokens EOS" of length len, tokens in [TOK_FIRST_DIM, vocab). */
static void fill_sequence(int *dst, int len, int vocab, uint64_t example, uint64_t side)
{
    dst[0] = dst[len - 1] = TOK_EOS;
    for (int p = 1; p < len - 1; p++) {
        uint64_t h = mix64(example * 0x100000001B3ULL ^ side << 56 ^ (uint64_t)p);
        dst[p] = TOK_FIRST_DIM + (int)(h % (uint64_t)(vocab - TOK_FIRST_DIM));
    }
}

/* CPU seconds of this process (all its threads). */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* raw[r * np + k]: rank k's time of repetition r. Returns the slowest rank's time of each
 * repetition, sorted (the caller frees it). */
static double *slowest_sorted(const double *raw, int reps, int np)
{
    double *slowest = lawt_malloc((size_t)reps * sizeof *slowest);
    for (int r = 0; r < reps; r++) {
        slowest[r] = 0;
        for (int k = 0; k < np; k++)
            if (raw[(size_t)r * (size_t)np + (size_t)k] > slowest[r])
                slowest[r] = raw[(size_t)r * (size_t)np + (size_t)k];
    }
    qsort(slowest, (size_t)reps, sizeof *slowest, cmp_double);
    return slowest;
}

/* ---- one measurement (under mpirun) ---- */

/* Per step and rank. */
typedef struct {
    double step, comm, allreduce;
} step_record;

/* The raw all-reduce alone: of o->floats floats, or of the model's parameter count. */
static int allreduce_only(comm *c, const options *o, size_t model_params)
{
    const int rank = comm_rank(c), np = comm_size(c), reps = o->reps;
    const size_t n = o->floats > 0 ? (size_t)o->floats : model_params;
    float *buf = lawt_malloc(n * sizeof *buf);
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i % 7) * 0.25f;
    double *raw = lawt_calloc((size_t)reps * (size_t)np, sizeof *raw);
    const double load0 = load_average();
    comm_allreduce_sum_float(c, buf, n); /* first touch of MPI's buffers */
    for (int r = 0; r < reps; r++) {
        comm_barrier(c);
        double t0 = lawt_now();
        comm_allreduce_sum_float(c, buf, n);
        raw[(size_t)r * (size_t)np + (size_t)rank] = lawt_now() - t0;
    }
    comm_allreduce_sum_double(c, raw, (size_t)reps * (size_t)np);
    if (rank == 0) {
        double *slowest = slowest_sorted(raw, reps, np);
        printf("bench_comm: all-reduce of %zu floats (%.1f MB), np %d, %d reps: min %.1f ms, median %.1f ms, "
               "max %.1f ms; %.2f GB/s (bytes / median); load average %.2f -> %.2f\n",
               n, 4e-6 * (double)n, np, reps, 1e3 * slowest[0], 1e3 * slowest[reps / 2], 1e3 * slowest[reps - 1],
               4.0 * (double)n / slowest[reps / 2] / 1e9, load0, load_average());
        free(slowest);
    }
    free(raw);
    free(buf);
    return 0;
}

static int measure(comm *c, const options *o)
{
    const int rank = comm_rank(c), np = comm_size(c);
    if (o->global_batch % np != 0)
        comm_abort(c, 2, "bench_comm: global batch %d is not a multiple of %d ranks", o->global_batch, np);
    const int local = o->global_batch / np;
    lawt_encoding enc;
    if (encoding_from_name(o->encoding, &enc) != 0)
        comm_abort(c, 2, "bench_comm: unknown encoding %s (%s)", o->encoding, encoding_names_list());
    lawt_vocab vocab;
    vocab_init(&vocab, &enc);
    model_config cfg = {
        .enc_layers = o->enc_layers, .dec_layers = o->dec_layers, .enc_dim = o->dim, .dec_dim = o->dim,
        .enc_heads = o->heads, .dec_heads = o->heads, .vocab_in = vocab.size, .vocab_out = vocab.size,
        .max_len = o->S > o->T ? o->S : o->T,
    };
    vocab_free(&vocab);
    char err[256];
    if (model_config_validate(&cfg, err, sizeof err) != 0) comm_abort(c, 2, "bench_comm: %s", err);
    if (o->allreduce_only) return allreduce_only(c, o, model_param_count(&cfg));

    const double load0 = load_average();
    model *m = model_create(&cfg, BACKEND_CPU, local);
    model_init_params(m, 1234); /* the same on every rank */
    const size_t n = model_num_params(m);
    /* The trainer's own step: the model's gradient buffer is all-reduced in place. */
    const step_context ctx = {m, c, NULL, np, NULL, 0};
    float *grads = model_gradient_buffer(m); /* for the raw all-reduce below */
    int *src = lawt_malloc((size_t)local * (size_t)o->S * sizeof *src);
    int *tgt = lawt_malloc((size_t)local * (size_t)o->T * sizeof *tgt);
    int *src_len = lawt_malloc((size_t)local * sizeof *src_len);
    int *tgt_len = lawt_malloc((size_t)local * sizeof *tgt_len);
    const step_hparams hp = {1e-4, 0.9, 0.98, 1e-9, 5.0};
    const int total = o->warmup + o->steps;
    step_record *mine = lawt_calloc((size_t)total, sizeof *mine);
    double loss_first = 0, loss_last = 0;

    if (rank == 0)
        printf("bench_comm: np %d, %zu parameters, global batch %d (%d per rank), %d/%d tokens, "
               "%d warm-up + %d timed steps, load average %.2f\n",
               np, n, o->global_batch, local, o->S, o->T, o->warmup, o->steps, load0);
    fflush(stdout);
    comm_barrier(c);
    double t_timed = 0, cpu_timed = 0;
    for (int s = 0; s < total; s++) {
        if (s == o->warmup) {
            comm_barrier(c);
            t_timed = lawt_now();
            cpu_timed = cpu_seconds();
        }
        const double t0 = lawt_now(), c0 = comm_seconds(c);
        for (int j = 0; j < local; j++) {
            uint64_t ex = (uint64_t)s * (uint64_t)o->global_batch + (uint64_t)rank * (uint64_t)local + (uint64_t)j;
            fill_sequence(src + (size_t)j * (size_t)o->S, o->S, cfg.vocab_in, ex, 1);
            fill_sequence(tgt + (size_t)j * (size_t)o->T, o->T, cfg.vocab_out, ex, 2);
            src_len[j] = o->S;
            tgt_len[j] = o->T;
        }
        model_batch batch = {local, o->S, o->T, src, src_len, tgt, tgt_len};
        step_times t = {0};
        double mean_loss = trainer_step(&ctx, &batch, &hp, s + 1, NULL, &t);
        if (!isfinite(mean_loss)) comm_abort(c, 1, "bench_comm: the loss is %g at step %d", mean_loss, s + 1);
        if (s == 0) loss_first = mean_loss;
        loss_last = mean_loss;
        const double t_ar = t.allreduce_s;
        mine[s] = (step_record){lawt_now() - t0, comm_seconds(c) - c0, t_ar};
    }
    /* The end of the last step on rank 0; the loss all-reduce synchronised the ranks. */
    const double window = lawt_now() - t_timed;
    /* CPU time / wall time of this rank over the timed steps: below 1 when other processes
     * took its core (Open MPI polls while it waits in a collective, so waiting counts as CPU). */
    const double cpu_share = (cpu_seconds() - cpu_timed) / window;

    /* Raw all-reduce of the whole gradient buffer, nothing around it. */
    const int reps = o->reps;
    double *raw = lawt_calloc((size_t)reps * (size_t)np, sizeof *raw);
    for (int r = 0; r < reps; r++) {
        comm_barrier(c);
        double t0 = lawt_now();
        comm_allreduce_sum_float(c, grads, n);
        raw[(size_t)r * (size_t)np + (size_t)rank] = lawt_now() - t0;
    }
    /* Gather every rank's times (sums of arrays where each rank fills its own slots). */
    double *all = lawt_calloc((size_t)total * 3 * (size_t)np, sizeof *all);
    double *shares = lawt_calloc((size_t)np, sizeof *shares);
    shares[rank] = cpu_share;
    comm_allreduce_sum_double(c, shares, (size_t)np);
    for (int s = 0; s < total; s++) {
        double *slot = all + ((size_t)s * (size_t)np + (size_t)rank) * 3;
        slot[0] = mine[s].step, slot[1] = mine[s].comm, slot[2] = mine[s].allreduce;
    }
    comm_allreduce_sum_double(c, all, (size_t)total * 3 * (size_t)np);
    comm_allreduce_sum_double(c, raw, (size_t)reps * (size_t)np);
    const double load1 = load_average();

    if (rank == 0) {
        /* Per timed step: comm = largest over ranks, all-reduce = smallest over ranks (the
         * last rank to arrive); then the mean over steps. */
        double comm_s = 0, ar_last = 0, ar_max = 0, step_min = 1e30, step_max = 0;
        double rank_step[64] = {0};
        for (int s = o->warmup; s < total; s++) {
            double cmax = 0, amin = 1e30, amax = 0;
            for (int r = 0; r < np; r++) {
                const double *slot = all + ((size_t)s * (size_t)np + (size_t)r) * 3;
                if (slot[1] > cmax) cmax = slot[1];
                if (slot[2] < amin) amin = slot[2];
                if (slot[2] > amax) amax = slot[2];
                if (r < 64) rank_step[r] += slot[0] / o->steps;
            }
            const double st = all[((size_t)s * (size_t)np) * 3];
            if (st < step_min) step_min = st;
            if (st > step_max) step_max = st;
            comm_s += cmax / o->steps;
            ar_last += amin / o->steps;
            ar_max += amax / o->steps;
        }
        double *slowest = slowest_sorted(raw, reps, np);
        const double raw_min = slowest[0], raw_med = slowest[reps / 2];
        free(slowest);
        const double step = window / o->steps;
        const char *threads = getenv("OPENBLAS_NUM_THREADS");
        printf("bench_comm: np %d: step %.3f s (min %.3f, max %.3f), %.2f examples/s; in collectives "
               "%.1f ms (%.2f%%); gradient all-reduce %.1f ms on the last rank to arrive, %.1f ms on "
               "the first (%.2f%% / %.2f%% of a step); raw all-reduce of %zu "
               "floats: min %.1f ms, median %.1f ms; loss %.4f -> %.4f; load average %.2f -> %.2f\n",
               np, step, step_min, step_max, o->global_batch / step, 1e3 * comm_s, 100 * comm_s / step,
               1e3 * ar_last, 1e3 * ar_max, 100 * ar_last / step, 100 * ar_max / step, n,
               1e3 * raw_min, 1e3 * raw_med, loss_first, loss_last, load0, load1);
        double cpu_min = 1e30;
        for (int r = 0; r < np; r++) {
            if (shares[r] < cpu_min) cpu_min = shares[r];
            if (r < 64) printf("  rank %d: %.3f s a step (its own clock), cpu/wall %.3f\n", r, rank_step[r], shares[r]);
        }
        if (o->row) {
            FILE *f = fopen(o->row, "w");
            if (!f) comm_abort(c, 1, "bench_comm: cannot write %s: %s", o->row, strerror(errno));
            fprintf(f,
                    "np %d\nparams %zu\nenc_layers %d\ndec_layers %d\ndim %d\nheads %d\nvocab %d\n"
                    "encoding %s\nS %d\nT %d\nglobal_batch %d\nlocal_batch %d\nsteps %d\nwarmup %d\n"
                    "reps %d\nthreads %s\nstep_s %.6f\nstep_min_s %.6f\nstep_max_s %.6f\n"
                    "examples_per_s %.6f\ncomm_s %.6f\nallreduce_last_s %.6f\nallreduce_first_s %.6f\n"
                    "raw_min_s %.6f\nraw_median_s %.6f\nload_start %.2f\nload_end %.2f\n"
                    "loss_first %.6f\nloss_last %.6f\ncpu_wall_min %.4f\n",
                    np, n, cfg.enc_layers, cfg.dec_layers, cfg.enc_dim, cfg.enc_heads, cfg.vocab_in,
                    o->encoding, o->S, o->T, o->global_batch, local, o->steps, o->warmup, reps,
                    threads ? threads : "unset", step, step_min, step_max, o->global_batch / step,
                    comm_s, ar_last, ar_max, raw_min, raw_med, load0, load1, loss_first, loss_last, cpu_min);
            if (fclose(f) != 0) comm_abort(c, 1, "bench_comm: cannot write %s", o->row);
        }
    }
    free(all);
    free(shares);
    free(raw);
    free(mine);
    free(src);
    free(tgt);
    free(src_len);
    free(tgt_len);
    model_free(m);
    return 0;
}

/* ---- the report: rows -> table -> RESULTS.md ---- */

#define MAX_ROWS 8
#define MAX_KEYS 40

typedef struct {
    int n;
    char key[MAX_KEYS][32], val[MAX_KEYS][64];
} row;

static int read_row(const char *path, row *r)
{
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    while (r->n < MAX_KEYS && fgets(line, sizeof line, f)) {
        char *sp = strchr(line, ' ');
        if (!sp) continue;
        *sp = '\0';
        snprintf(r->key[r->n], sizeof r->key[0], "%.31s", line);
        snprintf(r->val[r->n], sizeof r->val[0], "%.63s", sp + 1);
        r->val[r->n][strcspn(r->val[r->n], "\n")] = '\0';
        r->n++;
    }
    fclose(f);
    return 0;
}

static const char *get(const row *r, const char *key)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->key[i], key) == 0) return r->val[i];
    lawt_die("bench_comm: a row lacks %s", key);
}

static double num(const row *r, const char *key) { return atof(get(r, key)); }

typedef struct {
    char *buf;
    size_t len, cap;
} text;

static void tprintf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (t->buf && t->len + (size_t)k < t->cap) {
            t->len += (size_t)k;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap <= t->len + (size_t)k) cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) lawt_die("out of memory");
        t->buf = nb;
        t->cap = cap;
    }
}

static int report(int nfiles, char **files, const char *results, const char *note)
{
    row rows[MAX_ROWS];
    int nr = 0;
    for (int i = 0; i < nfiles && nr < MAX_ROWS; i++) {
        if (read_row(files[i], &rows[nr]) != 0) lawt_die("bench_comm: cannot read %s: %s", files[i], strerror(errno));
        nr++;
    }
    if (nr == 0) lawt_die("bench_comm --report: no row files");
    const row *r0 = &rows[0];
    double base = 0; /* examples/s at np = 1 */
    for (int i = 0; i < nr; i++)
        if (num(&rows[i], "np") == 1) base = num(&rows[i], "examples_per_s");

    text t = {0}, n = {0}, h = {0};
    tprintf(&t,
            "| ranks | global batch (per rank) | step (s) | examples/s | speed-up | in collectives "
            "(share of step) | gradient all-reduce, in place (share) | raw all-reduce, %s floats "
            "(min / median) | cpu/wall | load avg |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n",
            get(r0, "params"));
    for (int i = 0; i < nr; i++) {
        const row *r = &rows[i];
        int np = (int)num(r, "np");
        double step = num(r, "step_s");
        char speed[32] = "1.00x", comm[64] = "none (np = 1)", ar[64] = "none",
             raw[96] = "n/a";
        if (base > 0 && np != 1) snprintf(speed, sizeof speed, "%.2fx", num(r, "examples_per_s") / base);
        if (np > 1) {
            snprintf(comm, sizeof comm, "%.0f ms (%.1f%%)", 1e3 * num(r, "comm_s"), 100 * num(r, "comm_s") / step);
            snprintf(ar, sizeof ar, "%.0f ms (%.1f%%)", 1e3 * num(r, "allreduce_last_s"),
                     100 * num(r, "allreduce_last_s") / step);
            double bytes = 4.0 * num(r, "params");
            snprintf(raw, sizeof raw, "%.0f / %.0f ms (%.1f GB/s)", 1e3 * num(r, "raw_min_s"),
                     1e3 * num(r, "raw_median_s"), bytes / num(r, "raw_median_s") / 1e9);
        }
        tprintf(&t, "| %d | %d (%d) | %.2f (%.2f-%.2f) | %.2f | %s | %s | %s | %s | %.2f | %.2f -> %.2f |\n", np,
                (int)num(r, "global_batch"), (int)num(r, "local_batch"), step, num(r, "step_min_s"),
                num(r, "step_max_s"), num(r, "examples_per_s"), speed, comm, ar, raw,
                num(r, "cpu_wall_min"), num(r, "load_start"), num(r, "load_end"));
    }
    for (int i = 0; i < nr; i++) {
        const row *r = &rows[i];
        if (num(r, "np") != 2) continue;
        double share = num(r, "allreduce_last_s") / num(r, "step_s");
        double raw_share = num(r, "raw_median_s") / num(r, "step_s");
        tprintf(&n,
                "- Target (issue 4): the gradient all-reduce of the %.1fM-parameter model < 5%% of a step at "
                "2 ranks: %s, %.1f%% in the step (%.1f%% for the raw all-reduce's median against the same "
                "step).\n",
                num(r, "params") / 1e6, share < 0.05 && raw_share < 0.05 ? "met" : "NOT met", 100 * share,
                100 * raw_share);
    }
    tprintf(&n,
            "- Model %s/%s layers, %s dims, %s heads, %s vocabulary (%s) in and out; %s source and %s "
            "target tokens (with the EOS frames), random tokens, no padding; %s warm-up and %s timed steps; "
            "OPENBLAS_NUM_THREADS=%s per rank (one thread each: np = 1 uses one core, np = 2 both). "
            "Adam, clipping at 5.\n",
            get(r0, "enc_layers"), get(r0, "dec_layers"), get(r0, "dim"), get(r0, "heads"), get(r0, "encoding"),
            get(r0, "vocab"), get(r0, "S"), get(r0, "T"), get(r0, "warmup"), get(r0, "steps"), get(r0, "threads"));
    tprintf(&n,
            "- A step: every rank's share of the global batch, forward, all-reduce of the token count, "
            "backward, ONE comm_allreduce_sum_float of the model's gradient buffer in place, "
            "all-reduce of the loss, grad norm, Adam. Step = rank 0's wall time over the timed steps "
            "(min-max of single steps in brackets). \"In collectives\": comm_seconds() per step, the "
            "largest over ranks; it includes waiting for the slower rank. \"Gradient all-reduce\": the "
            "big all-reduce on the last rank to arrive (least waiting). \"Raw all-reduce\": the same "
            "call after a barrier, no training around it (%s reps, slowest rank). Cpu/wall: CPU time "
            "over wall time of the timed steps, the lowest over ranks (below 1: another process took "
            "the core; Open MPI polls while waiting, so waiting counts as CPU). Load avg: "
            "/proc/loadavg (1 min) at start and end of each run, on a 2-core machine shared with other "
            "jobs.\n",
            get(r0, "reps"));
    if (note) tprintf(&n, "- %s\n", note);

    run_stamp st;
    run_stamp_now(&st);
    char cpu[256];
    cpu_model_name(cpu, sizeof cpu);
    tprintf(&h, "## bench_comm, %s\n\nmachine `%s`, CPU %s, %ld cores; commit %s%s; Open MPI ranks on one node.\n\n",
            st.date, st.host, cpu, sysconf(_SC_NPROCESSORS_ONLN), st.commit, st.dirty);
    printf("\n%s%s\n%s", h.buf, t.buf, n.buf);
    if (results) {
        int existed = access(results, F_OK) == 0;
        FILE *f = fopen(results, "a");
        if (!f) lawt_die("bench_comm: cannot append to %s: %s", results, strerror(errno));
        if (!existed) fprintf(f, "# Benchmark results\n");
        fprintf(f, "\n%s%s\n%s", h.buf, t.buf, n.buf);
        if (fclose(f) != 0) lawt_die("bench_comm: cannot write %s", results);
        printf("\nappended to %s\n", results);
    }
    free(t.buf);
    free(n.buf);
    free(h.buf);
    return 0;
}

int main(int argc, char **argv)
{
    /* The report needs no MPI. */
    if (argc > 1 && strcmp(argv[1], "--report") == 0) {
        const char *results = LAWT_BENCH_RESULTS, *note = NULL;
        int i = 2;
        for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
            if (strcmp(argv[i], "--no-append") == 0) results = NULL;
            else if (strcmp(argv[i], "--results") == 0 && i + 1 < argc) results = argv[++i];
            else if (strcmp(argv[i], "--note") == 0 && i + 1 < argc) note = argv[++i];
            else {
                usage(stderr);
                return 2;
            }
        }
        return report(argc - i, argv + i, results, note);
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }

    comm *c = comm_init(&argc, &argv);
    options o = {.global_batch = 64, .steps = 3, .warmup = 1, .reps = 10, .enc_layers = 6, .dec_layers = 1,
                 .dim = 512, .heads = 8, .S = 79, .T = 19, .encoding = "P1000"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--global-batch") == 0) o.global_batch = int_arg(a, v, 1), i++;
        else if (strcmp(a, "--steps") == 0) o.steps = int_arg(a, v, 1), i++;
        else if (strcmp(a, "--warmup") == 0) o.warmup = int_arg(a, v, 0), i++;
        else if (strcmp(a, "--allreduce-reps") == 0) o.reps = int_arg(a, v, 1), i++;
        else if (strcmp(a, "--enc-layers") == 0) o.enc_layers = int_arg(a, v, 1), i++;
        else if (strcmp(a, "--dec-layers") == 0) o.dec_layers = int_arg(a, v, 1), i++;
        else if (strcmp(a, "--dim") == 0) o.dim = int_arg(a, v, 1), i++;
        else if (strcmp(a, "--heads") == 0) o.heads = int_arg(a, v, 1), i++;
        else if (strcmp(a, "--src-len") == 0) o.S = int_arg(a, v, 3), i++;
        else if (strcmp(a, "--tgt-len") == 0) o.T = int_arg(a, v, 3), i++;
        else if (strcmp(a, "--encoding") == 0 && v) snprintf(o.encoding, sizeof o.encoding, "%s", v), i++;
        else if (strcmp(a, "--row") == 0 && v) o.row = v, i++;
        else if (strcmp(a, "--allreduce-only") == 0) o.allreduce_only = 1;
        else if (strcmp(a, "--floats") == 0) o.floats = int_arg(a, v, 1), i++;
        else {
            if (comm_rank(c) == 0) usage(stderr);
            comm_abort(c, 2, "bench_comm: unknown or incomplete option %s", a);
        }
    }
    measure(c, &o);
    comm_finalize(c);
    return 0;
}
