/* harness.c: see harness.h. */
#define _DEFAULT_SOURCE /* wait4 (the PyTorch child's peak RSS) */

#include "bench/harness.h"

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
#include <unistd.h>

#include "bench/machine.h"
#include "common/common.h"
#include "encoding/encoding.h"
#include "trainer/trainer.h"


model_config shape_config(const bench_shape *sh, int vocab)
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

flop_count count_flops(const bench_shape *sh, int vocab)
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

static model *job_model(const lawt_job *j, int max_batch)
{
    model_config cfg = shape_config(j->shape, j->vocab);
    if (j->backend == BACKEND_CUDA) model_set_cuda_precision(j->precision);
    model *m = model_create(&cfg, j->backend, max_batch);
    model_init_params(m, 1);
    return m;
}

/* One trainer step (trainer_step: clip the gradient norm at 5, Adam at lr 1e-4); adds the
 * time of its phases to r and returns the mean token loss. */
static double train_step(model *m, const model_batch *b, long step, measure *r)
{
    static const step_hparams H = {1e-4, 0.9, 0.999, 1e-8, 5.0};
    const step_context ctx = {m, NULL, NULL, 1, NULL, 0};
    step_times t = {0};
    double loss = trainer_step(&ctx, b, &H, step, NULL, &t);
    r->fwd_s += t.forward_s;
    r->bwd_s += t.backward_s;
    r->opt_s += t.allreduce_s + t.optimizer_s;
    return loss;
}

void job_train(const void *job, measure *r)
{
    const lawt_job *j = job;
    const bench_shape *sh = j->shape;
    const int B = j->batch;
    model *m = job_model(j, B);
    r->params = (long)model_num_params(m);
    int *src = lawt_malloc((size_t)B * sh->S * sizeof(int));
    int *tgt = lawt_malloc((size_t)B * sh->T * sizeof(int));
    int *src_len = lawt_malloc((size_t)B * sizeof(int));
    int *tgt_len = lawt_malloc((size_t)B * sizeof(int));
    model_batch batch = {B, sh->S, sh->T, src, src_len, tgt, tgt_len};
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    long step = 0;
    for (int w = 0; w < j->warmup; w++) {
        random_framed(src, src_len, B, sh->S, j->vocab, &rng);
        random_framed(tgt, tgt_len, B, sh->T, j->vocab, &rng);
        train_step(m, &batch, ++step, r);
    }
    r->fwd_s = r->bwd_s = r->opt_s = 0;
    double t0 = lawt_now(), elapsed = 0;
    do {
        /* fresh tokens every step, inside the window, as the PyTorch script does */
        random_framed(src, src_len, B, sh->S, j->vocab, &rng);
        random_framed(tgt, tgt_len, B, sh->T, j->vocab, &rng);
        double loss = train_step(m, &batch, ++step, r);
        if (r->steps == 0) r->loss_first = loss;
        r->loss_last = loss;
        r->steps++;
        elapsed = lawt_now() - t0;
    } while (elapsed < j->seconds);
    r->seconds = elapsed;
    r->examples = (double)r->steps * B;
    r->tokens = r->examples * (sh->S + sh->T);
    free(src);
    free(tgt);
    free(src_len);
    free(tgt_len);
    model_free(m);
}

/* Random weights would often pick EOS first and end a decode early; a very negative output
 * bias on EOS makes every example decode exactly max_out tokens, so that the work per call is
 * fixed and equal to the PyTorch script's. */
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
    if (!found) lawt_die("bench: no tensor named dec.out_bias");
    model_copy_in(m, BUF_PARAMS, p);
    free(p);
    free(t);
}

void job_decode(const void *job, measure *r)
{
    const lawt_job *j = job;
    const int B = j->batch, S = j->shape->S, max_out = j->max_out;
    model *m = job_model(j, B);
    forbid_eos(m);
    r->params = (long)model_num_params(m);
    int *src = lawt_malloc((size_t)B * S * sizeof(int));
    int *src_len = lawt_malloc((size_t)B * sizeof(int));
    int *out = lawt_malloc((size_t)B * max_out * sizeof(int));
    int *out_len = lawt_malloc((size_t)B * sizeof(int));
    uint64_t rng = 0x243F6A8885A308D3ULL;
    random_framed(src, src_len, B, S, j->vocab, &rng);
    model_greedy_decode(m, src, src_len, B, S, max_out, out, out_len); /* warm-up */
    double t0 = lawt_now(), elapsed = 0, positions = 0;
    do {
        random_framed(src, src_len, B, S, j->vocab, &rng);
        model_greedy_decode(m, src, src_len, B, S, max_out, out, out_len);
        /* the decoder runs every row until the longest output ends (or EOS is chosen there) */
        int longest = 0;
        for (int b = 0; b < B; b++) {
            r->tokens += out_len[b];
            if (out_len[b] > longest) longest = out_len[b];
        }
        positions += longest < max_out ? longest + 1 : max_out;
        r->steps++;
        elapsed = lawt_now() - t0;
    } while (elapsed < j->seconds);
    r->seconds = elapsed;
    r->examples = (double)r->steps * B;
    r->decoder_steps = positions / (double)r->steps;
    free(src);
    free(src_len);
    free(out);
    free(out_len);
    model_free(m);
}

/* Describes how a child ended, for the table: "" when it exited with status 0. */
static void describe_status(int status, char *why, size_t cap)
{
    why[0] = '\0';
    if (WIFSIGNALED(status)) snprintf(why, cap, "killed by signal %d", WTERMSIG(status));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        snprintf(why, cap, "exited with status %d", WEXITSTATUS(status));
}

/* A pipe, then fork (stdio flushed first, so that nothing is written twice). */
static pid_t fork_with_pipe(int fd[2])
{
    if (pipe(fd) != 0) lawt_die("bench: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) lawt_die("bench: fork: %s", strerror(errno));
    return pid;
}

measure run_measured(void (*fn)(const void *arg, measure *r), const void *arg, int threads,
                     char *why, size_t whycap)
{
    measure r;
    memset(&r, 0, sizeof r);
    int fd[2];
    pid_t pid = fork_with_pipe(fd);
    if (pid == 0) {
        close(fd[0]);
        /* The model's thread pool sizes itself from OpenBLAS's thread count at first use,
         * unless LAWT_THREADS says otherwise: set both, so that `threads` is what runs. */
        char nth[16];
        snprintf(nth, sizeof nth, "%d", threads);
        setenv("LAWT_THREADS", nth, 1);
        openblas_set_num_threads(threads);
        fn(arg, &r);
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
    fprintf(stderr, "bench: running");
    for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "\n");
    int fd[2];
    pid_t pid = fork_with_pipe(fd);
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], STDOUT_FILENO);
        close(fd[1]);
        execv(python, argv);
        fprintf(stderr, "bench: cannot run %s: %s\n", python, strerror(errno));
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

py_result pytorch_shape(const py_setup *ps, const bench_shape *sh, int vocab, int decode,
                        int batch, int tgt_len, double seconds, char *why, size_t whycap)
{
    char a[9][32];
    snprintf(a[0], 32, "%d", sh->enc_layers);
    snprintf(a[1], 32, "%d", sh->dec_layers);
    snprintf(a[2], 32, "%d", sh->dim);
    snprintf(a[3], 32, "%d", sh->heads);
    snprintf(a[4], 32, "%d", sh->S);
    snprintf(a[5], 32, "%d", tgt_len);
    snprintf(a[6], 32, "%d", vocab);
    snprintf(a[7], 32, "%d", batch);
    snprintf(a[8], 32, "%g", seconds);
    char threads[16], warm[16];
    snprintf(threads, sizeof threads, "%d", ps->threads);
    snprintf(warm, sizeof warm, "%d", decode ? 1 : ps->warmup);
    char *args[32] = {"--enc-layers", a[0], "--dec-layers", a[1], "--dim", a[2], "--heads", a[3],
                      "--src-len", a[4], "--tgt-len", a[5], "--vocab", a[6], "--batch", a[7],
                      "--seconds", a[8], "--threads", threads, "--warmup-steps", warm};
    int n = 22;
    if (decode) args[n++] = "--decode";
    if (ps->device && strcmp(ps->device, "cpu") != 0) {
        args[n++] = "--device";
        args[n++] = (char *)ps->device;
    }
    if (ps->amp && strcmp(ps->amp, "none") != 0) {
        args[n++] = "--amp";
        args[n++] = (char *)ps->amp;
    }
    if (ps->compile) args[n++] = "--compile";
    args[n] = NULL;
    return run_pytorch(ps->python, ps->script, args, why, whycap);
}

int file_exists(const char *path) { return access(path, R_OK) == 0; }

/* The GPU kit's copy (scripts/gpu-kit.sh): bench/pytorch_reference.py beside the program's
 * bin/ folder. */
static int kit_script(char *buf, size_t cap)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = '\0';
    snprintf(buf, cap, "%.3000s/../bench/pytorch_reference.py", exe);
    return file_exists(buf);
}

const char *find_pytorch_script(const char *explicit_path, const char *python, char *note,
                                size_t notecap)
{
    static char found[4096];
    const char *script = explicit_path;
    note[0] = '\0';
    if (!script) {
        snprintf(found, sizeof found, "%s/../shared/bench/pytorch_reference.py", LAWT_SOURCE_DIR);
        if (file_exists(found)) script = found;
        else if (file_exists("../shared/bench/pytorch_reference.py"))
            script = "../shared/bench/pytorch_reference.py";
        else if (kit_script(found, sizeof found)) script = found;
    }
    if (!script || !file_exists(script))
        snprintf(note, notecap, "PyTorch skipped: %.400s not found.",
                 script ? script : "../shared/bench/pytorch_reference.py");
    else if (!file_exists(python))
        snprintf(note, notecap, "PyTorch skipped: no interpreter %.400s.", python);
    return note[0] ? NULL : script;
}

void tprintf(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = (t->len + (size_t)n + 1) * 2;
        char *nb = realloc(t->buf, t->cap);
        if (!nb) lawt_die("bench: out of memory");
        t->buf = nb;
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* "12.3", or "n/a" when not measured. */
static const char *num(char *buf, size_t cap, int ok, double v, const char *fmt)
{
    if (ok) snprintf(buf, cap, fmt, v);
    else snprintf(buf, cap, "n/a");
    return buf;
}

void table_row(text *t, const char *what, int lok, double lv, int pok, double pv,
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

void append_results(const char *path, const char *header, const char *table, const char *notes)
{
    int existed = file_exists(path);
    FILE *f = fopen(path, "a");
    if (!f) lawt_die("bench: cannot append to %s: %s", path, strerror(errno));
    if (!existed) fprintf(f, "# lawt benchmark results\n");
    fprintf(f, "\n%s%s\n%s", header, table, notes);
    fclose(f);
    printf("\nappended to %s\n", path);
}

void parse_only_list(const char *prog, const char *list, const char *const names[], int *flags[],
                     int n)
{
    for (int k = 0; k < n; k++) *flags[k] = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < n && strcmp(w, names[k]) != 0) k++;
        if (k == n) {
            char allowed[256] = "";
            for (int i = 0; i < n; i++)
                snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s",
                         i ? "," : "", names[i]);
            lawt_die("%s: --only takes a list of %s (got '%s')", prog, allowed, w);
        }
        *flags[k] = 1;
    }
}

double positive_arg(const char *prog, const char *flag, const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (*end || !(x > 0)) lawt_die("%s: %s needs a positive number (got '%s')", prog, flag, v);
    return x;
}
