/* train.c: one data-parallel training run.
 *
 * Every rank holds the whole model and makes its own share of each global batch: example
 * number step * batch_size + rank * local_batch + j of the training stream, so the examples a
 * run sees do not depend on the number of ranks. The loss is summed over tokens and scaled by
 * 1 / (global token count), the gradients are summed over ranks in one all-reduce of the flat
 * buffer, and every rank then takes the same Adam step on the same numbers, so the replicas
 * stay identical. Evaluation shards a fresh slice of the test stream over the ranks and sums
 * the tallies. Rank 0 writes every file and every line of output. */
#include "trainer/trainer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "comm/comm_nccl.h"
#include "curves/curves.h"
#include "encoding/encoding.h"
#include "model/model.h"
#include "trainer/batch_source.h"

/* A growing string: the metrics history kept for checkpoints. */
typedef struct {
    char *text;
    size_t len, cap;
} text_buffer;

static void text_append(text_buffer *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = 2 * (b->len + n + 1);
        char *grown = realloc(b->text, b->cap);
        if (!grown) lawt_die("out of memory growing the metrics history to %zu bytes", b->cap);
        b->text = grown;
    }
    memcpy(b->text + b->len, s, n + 1);
    b->len += n;
}

typedef struct {
    const trainer_config *cfg;
    const trainer_options *opt;
    comm *comm;
    int rank, ranks;

    lawt_vocab vin, vout;
    int max_src, max_tgt; /* framed sequence lengths */
    int max_out;          /* predicted tokens between the two EOS */
    model *model;
    comm_nccl *nccl;      /* gradient all-reduce on the GPUs (CUDA backend, ranks > 1) */
    float *grads;         /* host copy of the gradients: CUDA backend at ranks > 1 without NCCL */
    batch_spec batch_spec;
    batch_source *batches; /* training batches, during train() */

    int local_batch;
    long steps_per_epoch, total_steps, last_step;

    /* An evaluation batch: rows of max_src / max_tgt tokens. */
    int *src, *tgt, *src_len, *tgt_len;
    /* Evaluation: the problems and the predictions of one decoding batch. */
    lawt_matrix *inputs, *targets;
    lawt_task *tasks;
    double *pred_coeffs;
    size_t out_coeffs;
    int *pred, *pred_len;

    long step;            /* optimizer steps done */
    uint64_t test_index;  /* next unused example of the test stream */
    double lr;            /* learning rate of the last step */
    double best_accuracy;
    double wall_before;   /* wall seconds of earlier segments of a resumed run */
    double t_start;
    double train_seconds; /* inside training steps, this segment (throughput, ETA) */
    long steps_timed;
    long tokens_timed;

    /* Rank 0's outputs: descriptors of train.log and metrics.jsonl (-1: none, or closed after
     * a failed write), every write checked. */
    int log_fd, metrics_fd;
    int write_failed;      /* a write into the run directory failed (agreed by all ranks at
                            * the next check: stop_check, save_checkpoints) */
    int checkpoint_failed; /* that write was a checkpoint's */
    long fault_nan_step;   /* LAWT_FAULT_NAN_AT_STEP: the loss of that step is NaN (tests) */
    int evaluation_stopped; /* --evaluate: a stop signal came between two batches */
    text_buffer metrics;
    int tty;
    int progress_shown;
    double progress_time;
} run_state;

/* Appends text to the run directory's file fd (named name): one checked write. The first
 * failure is reported on stderr with the file and the errno, the file is written no more and
 * the run stops at the next check (TRAINER_EXIT_WRITE_FAILED). */
static void append_to(run_state *r, int *fd, const char *name, const char *text, size_t n)
{
    if (*fd < 0) return;
    if (lawt_write_all(*fd, text, n) == 0) return;
    int e = errno;
    fprintf(stderr, "lawt: error: writing %s/%s failed: %s (errno %d); the run stops at the end "
            "of this step\n", r->cfg->dir, name, strerror(e), e);
    close(*fd);
    *fd = -1;
    r->write_failed = 1;
}

static void log_line(run_state *r, const char *line)
{
    if (r->rank != 0 || r->log_fd < 0) return;
    size_t n = strlen(line);
    char *text = lawt_malloc(n + 2);
    memcpy(text, line, n);
    memcpy(text + n, "\n", 2);
    append_to(r, &r->log_fd, "train.log", text, n + 1);
    free(text);
}

/* A line of the run's log, rank 0 only: train.log, and stdout (out) or stderr (err). */
static void vsay(run_state *r, FILE *out, const char *fmt, va_list ap)
{
    if (r->rank != 0) return;
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    if (r->progress_shown) {
        fputs("\r\033[K", stderr);
        r->progress_shown = 0;
    }
    fprintf(out, "%s%s\n", out == stderr ? "lawt: " : "", line);
    fflush(out);
    log_line(r, line);
}

static void say(run_state *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(run_state *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(r, stdout, fmt, ap);
    va_end(ap);
}

/* A line that ends the run or warns of lost data: stderr and train.log. */
static void shout(run_state *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void shout(run_state *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(r, stderr, fmt, ap);
    va_end(ap);
}

static void record_metrics(run_state *r, const char *json)
{
    if (r->rank != 0) return;
    text_append(&r->metrics, json);
    text_append(&r->metrics, "\n");
    size_t n = strlen(json);
    char *text = lawt_malloc(n + 2);
    memcpy(text, json, n);
    memcpy(text + n, "\n", 2);
    /* One write a record: a record is cut short only by a failing disk or a killed process. */
    append_to(r, &r->metrics_fd, "metrics.jsonl", text, n + 1);
    free(text);
}

static double wall_seconds(const run_state *r) { return r->wall_before + lawt_now() - r->t_start; }

static void format_duration(double s, char *buf, size_t cap)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

static int make_dirs(const char *path)
{
    char buf[CONFIG_TEXT_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) && errno != EEXIST) return -1;
            *p = c;
            if (c == '\0') return 0;
        }
    }
}

/* "  STATUS  meaning", the meaning wrapped at 90 columns under itself. */
static void print_exit_status(FILE *f, int status, const char *meaning)
{
    enum { INDENT = 7, WIDTH = 90 };
    fprintf(f, "  %3d ", status);
    int col = INDENT - 1;
    for (const char *p = meaning; *p;) {
        int n = (int)strcspn(p, " ");
        if (col + 1 + n > WIDTH) {
            fprintf(f, "\n%*s", INDENT - 1, "");
            col = INDENT - 1;
        }
        col += fprintf(f, " %.*s", n, p);
        p += n;
        while (*p == ' ') p++;
    }
    fputc('\n', f);
}

void trainer_print_exit_statuses(FILE *f)
{
#define PRINT_EXIT_STATUS(name, value, meaning) print_exit_status(f, value, meaning);
    TRAINER_EXIT_STATUSES(PRINT_EXIT_STATUS)
#undef PRINT_EXIT_STATUS
}

int trainer_claim_run_dir(const char *dir, int new_run, char *err, size_t errcap)
{
    if (make_dirs(dir)) {
        snprintf(err, errcap, "cannot create the run directory %s: %s", dir, strerror(errno));
        return TRAINER_EXIT_ERROR;
    }
    char path[CONFIG_TEXT_MAX + 64];
    snprintf(path, sizeof path, "%s/run.lock", dir);
    /* Never closed: the lock is the process's until it exits (a POSIX record lock, which
     * network file systems honour too; the kernel releases it when the process dies). */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errcap, "cannot open %s: %s", path, strerror(errno));
        return TRAINER_EXIT_ERROR;
    }
    struct flock lock = {0};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &lock) != 0) {
        int e = errno;
        char holder[256] = "";
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(fd);
        if (e == EACCES || e == EAGAIN) {
            snprintf(err, errcap, "the run directory %s is in use by another lawt_dist (%s, "
                     "%s): wait for it to end, or choose another --run-dir", dir,
                     holder[0] ? holder : "holder not recorded yet", path);
            return TRAINER_EXIT_LOCKED;
        }
        snprintf(err, errcap, "cannot lock %s: %s", path, strerror(e));
        return TRAINER_EXIT_ERROR;
    }
    char host[256] = "unknown";
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    char text[512];
    int n = snprintf(text, sizeof text, "host %s, PID %ld\n", host, (long)getpid());
    if (ftruncate(fd, 0) != 0 || lawt_write_all(fd, text, (size_t)n) != 0) {
        int e = errno;
        snprintf(err, errcap, "writing %s failed: %s (errno %d)", path, strerror(e), e);
        return TRAINER_EXIT_WRITE_FAILED;
    }
    if (new_run && checkpoint_latest(dir, path, sizeof path) == 0) {
        snprintf(err, errcap, "the run directory %s already holds a run (%s): continue it with "
                 "--resume, or choose another --run-dir", dir, path);
        return TRAINER_EXIT_USAGE;
    }
    return 0;
}

/* One optimizer step on the global batch (trainer_step); returns the mean token loss over all
 * ranks, or a non-finite loss without taking the step. */
static double train_step(run_state *r, long *global_tokens)
{
    const trainer_config *cfg = r->cfg;
    model_batch batch = batch_source_next(r->batches, r->step, global_tokens);
    const step_context ctx = {r->model, r->comm, r->nccl, r->ranks, r->grads,
                              r->fault_nan_step == r->step + 1};
    const step_hparams hp = {schedule_lr(cfg, r->step + 1, r->total_steps), cfg->beta1,
                             cfg->beta2, cfg->eps, cfg->clip};
    double loss = trainer_step(&ctx, &batch, &hp, r->step + 1, global_tokens, NULL);
    if (isfinite(loss)) {
        r->step++;
        r->lr = hp.lr;
    }
    return loss;
}

/* Failure analysis (section 4.5): accuracy by the condition number of the input matrix, in
 * decades [1, 10), [10, 100), [100, 1000), [1000, inf) (singular inputs in the last). */
enum { COND_BUCKETS = 4 };

static int condition_bucket(const lawt_matrix *input)
{
    double c = eval_condition_number(input);
    int b = 0;
    while (b < COND_BUCKETS - 1 && !(c < pow(10.0, b + 1))) b++;
    return b;
}

/* One line and one metrics record of the tallies by condition number (all ranks' sums). */
static void report_by_condition(run_state *r, eval_tally *by_cond)
{
    const trainer_config *cfg = r->cfg;
    long counts[COND_BUCKETS][3];
    for (int b = 0; b < COND_BUCKETS; b++) {
        counts[b][0] = by_cond[b].count;
        counts[b][1] = by_cond[b].well_formed;
        counts[b][2] = by_cond[b].pass[NORM_L1][0];
    }
    comm_allreduce_sum_long(r->comm, &counts[0][0], sizeof counts / sizeof counts[0][0]);
    static const char *const NAMES[COND_BUCKETS] = {"<10", "10-100", "100-1000", ">=1000"};
    char json[1024], line[1024];
    lawt_text js = {json, sizeof json, 0}, ln = {line, sizeof line, 0};
    lawt_appendf(&js, "{\"type\":\"by_condition\",\"tolerance\":%g,\"buckets\":[",
                 100.0 * cfg->tol[0]);
    lawt_appendf(&ln, "cond   L1 accuracy at %g%% (well-formed) by condition number of the input:",
                 100.0 * cfg->tol[0]);
    for (int b = 0; b < COND_BUCKETS; b++) {
        double total = counts[b][0] ? (double)counts[b][0] : 1.0;
        double acc = 100.0 * (double)counts[b][2] / total;
        double wf = 100.0 * (double)counts[b][1] / total;
        lawt_appendf(&js, "%s{\"cond\":\"%s\",\"count\":%ld,\"acc\":%.2f,\"well_formed\":%.2f}",
                     b ? "," : "", NAMES[b], counts[b][0], acc, wf);
        lawt_appendf(&ln, "%s %s: %.2f%% (%.2f%%) of %ld", b ? " |" : "", NAMES[b], acc, wf,
                     counts[b][0]);
    }
    lawt_appendf(&js, "]}");
    say(r, "%s", line);
    record_metrics(r, json);
}

/* Evaluates on the next eval_size examples of the test stream; returns the L1 accuracy at the
 * first tolerance (percent), which ranks checkpoints. Evaluating a checkpoint (--evaluate) also
 * reports accuracy by the condition number of square inputs, and ends early, reporting nothing,
 * on a stop signal (r->evaluation_stopped). */
static double evaluate(run_state *r)
{
    const trainer_config *cfg = r->cfg;
    double t0 = lawt_now();
    eval_tally tally, by_cond[COND_BUCKETS];
    eval_tally_init(&tally, cfg->tol, cfg->ntol);
    for (int b = 0; b < COND_BUCKETS; b++) eval_tally_init(&by_cond[b], cfg->tol, cfg->ntol);
    int square = 1; /* every input so far */
    long lo = cfg->eval_size * r->rank / r->ranks, hi = cfg->eval_size * (r->rank + 1) / r->ranks;
    /* Every rank runs as many batches as the largest shard needs, so that --evaluate, which
     * can be long, checks for a stop signal between batches the same number of times on all. */
    long largest = (cfg->eval_size + r->ranks - 1) / r->ranks;
    for (long first = lo; first < lo + largest; first += cfg->eval_batch) {
        if (r->opt->evaluate_path && first > lo && comm_any(r->comm, comm_stop_requested())) {
            r->evaluation_stopped = 1;
            return -1.0;
        }
        if (first >= hi) continue;
        int B = (int)(hi - first < cfg->eval_batch ? hi - first : cfg->eval_batch);
        for (int j = 0; j < B; j++)
            datagen_tokens(&cfg->data, &r->vin, &r->vout, cfg->seed, STREAM_TEST,
                           r->test_index + (uint64_t)(first + j), r->src + (size_t)j * r->max_src,
                           &r->src_len[j], r->tgt + (size_t)j * r->max_tgt, &r->tgt_len[j],
                           &r->inputs[j], &r->targets[j], &r->tasks[j]);
        /* Sources are padded to the longest possible, not to the batch's longest, so that
         * an example's prediction does not depend on its batch companions (or rank count). */
        pad_rows(r->src, B, r->max_src, r->max_src, r->src_len);
        if (cfg->decoding == DECODING_BEAM)
            model_beam_decode(r->model, r->src, r->src_len, B, r->max_src, cfg->beam_size,
                              r->max_out, r->pred, r->pred_len);
        else
            model_greedy_decode(r->model, r->src, r->src_len, B, r->max_src, r->max_out, r->pred,
                                r->pred_len);
        for (int j = 0; j < B; j++) {
            lawt_matrix pred = {0, 0, r->pred_coeffs};
            decode_status status = decode_matrix(&r->vout, r->pred + (size_t)j * r->max_out,
                                                 r->pred_len[j], &pred, (int)r->out_coeffs);
            eval_tally_add(&tally, r->tasks[j], &r->inputs[j], &r->targets[j],
                           status == DECODE_OK ? &pred : NULL);
            square &= r->inputs[j].rows == r->inputs[j].cols;
            if (r->opt->evaluate_path && square)
                eval_tally_add(&by_cond[condition_bucket(&r->inputs[j])], r->tasks[j],
                               &r->inputs[j], &r->targets[j], status == DECODE_OK ? &pred : NULL);
        }
    }
    /* Counters are exact sums, so the accuracies do not depend on the number of ranks. */
    long counts[2 + LAWT_NORM_COUNT * EVAL_MAX_TOLERANCES];
    counts[0] = tally.count;
    counts[1] = tally.well_formed;
    memcpy(counts + 2, tally.pass, sizeof tally.pass);
    comm_allreduce_sum_long(r->comm, counts, sizeof counts / sizeof counts[0]);
    tally.count = counts[0];
    tally.well_formed = counts[1];
    memcpy(tally.pass, counts + 2, sizeof tally.pass);
    r->test_index += (uint64_t)cfg->eval_size;

    /* Fractional when max_steps or a signal ended the run inside an epoch. */
    double epoch = (double)r->step / (double)r->steps_per_epoch;
    char json[4096], line[1024];
    lawt_text js = {json, sizeof json, 0}, ln = {line, sizeof line, 0};
    lawt_appendf(&js, "{\"type\":\"eval\",\"epoch\":%.6g,\"step\":%ld,\"examples\":%ld,"
                 "\"time\":%.3f,\"size\":%ld",
                 epoch, r->step, r->step * (long)cfg->batch_size, wall_seconds(r), tally.count);
    if (r->opt->evaluate_path)
        lawt_appendf(&ln, "eval   %s, %ld test examples: L1 accuracy", r->opt->evaluate_path,
                     tally.count);
    else
        lawt_appendf(&ln, "eval   epoch %.6g, %ld test examples: L1 accuracy", epoch, tally.count);
    static const char *const FIELDS[LAWT_NORM_COUNT] = {"acc", "acc_l2", "acc_linf"};
    for (int norm = 0; norm < LAWT_NORM_COUNT; norm++) {
        lawt_appendf(&js, ",\"%s\":{", FIELDS[norm]);
        for (int i = 0; i < cfg->ntol; i++) {
            double acc = eval_tally_accuracy(&tally, (lawt_norm)norm, i);
            lawt_appendf(&js, "%s\"%g\":%.2f", i ? "," : "", 100.0 * cfg->tol[i], acc);
            if (norm == NORM_L1) lawt_appendf(&ln, " %g%%: %.2f", 100.0 * cfg->tol[i], acc);
        }
        lawt_appendf(&js, "}");
    }
    double well_formed =
        tally.count ? 100.0 * (double)tally.well_formed / (double)tally.count : 0.0;
    lawt_appendf(&js, ",\"well_formed\":%.2f}", well_formed);
    lawt_appendf(&ln, " | well-formed %.2f%% | %.1f s", well_formed, lawt_now() - t0);
    say(r, "%s", line);
    record_metrics(r, json);
    if (r->opt->evaluate_path) {
        long not_square = !square; /* on any rank */
        comm_allreduce_sum_long(r->comm, &not_square, 1);
        if (not_square == 0) report_by_condition(r, by_cond);
        else say(r, "cond   inputs are not all square: no analysis by condition number");
    }
    return eval_tally_accuracy(&tally, NORM_L1, 0);
}

static checkpoint_meta make_meta(const run_state *r)
{
    checkpoint_meta meta = {0};
    meta.step = r->step;
    meta.examples_seen = r->step * (long)r->cfg->batch_size;
    meta.epoch = r->step / r->steps_per_epoch;
    meta.seed = r->cfg->seed;
    meta.test_index = r->test_index;
    meta.lr = r->lr;
    meta.best_accuracy = r->best_accuracy;
    meta.wall_seconds = wall_seconds(r);
    meta.config_text = (char *)r->opt->config_text;
    meta.metrics_jsonl = r->metrics.text ? r->metrics.text : "";
    return meta;
}

static int save_checkpoint_file(run_state *r, const char *path)
{
    char err[1024];
    checkpoint_meta meta = make_meta(r);
    if (checkpoint_save(path, r->model, &meta, err, sizeof err) == 0) return 0;
    shout(r, "error: %s", err);
    r->write_failed = r->checkpoint_failed = 1;
    return -1;
}

/* Every rank: whether a write into the run directory failed on rank 0, agreed. */
static int agree_write_failed(run_state *r)
{
    long flags[2] = {r->write_failed, r->checkpoint_failed};
    if (r->ranks > 1) comm_allreduce_sum_long(r->comm, flags, 2);
    r->write_failed = flags[0] > 0;
    r->checkpoint_failed = flags[1] > 0;
    return r->write_failed;
}

/* Rank 0 writes step-<step>.h5 (and best.h5 when accuracy is the best so far) into the run
 * directory; accuracy < 0 means "no evaluation". A failed write stops the run (no point
 * training on what cannot be saved): the caller sees r->write_failed, on every rank. */
static void save_checkpoints(run_state *r, double accuracy)
{
    if (r->rank == 0 && r->cfg->dir[0]) {
        int best = accuracy > r->best_accuracy;
        if (best) r->best_accuracy = accuracy;
        char path[CONFIG_TEXT_MAX + 64];
        if (checkpoint_step_path(r->cfg->dir, r->step, path, sizeof path))
            comm_abort(r->comm, 1, "checkpoint path too long in %s", r->cfg->dir);
        if (save_checkpoint_file(r, path) == 0) {
            checkpoint_keep_last(r->cfg->dir, r->cfg->keep_checkpoints);
            if (best) {
                snprintf(path, sizeof path, "%s/best.h5", r->cfg->dir);
                save_checkpoint_file(r, path);
            }
        }
    }
    agree_write_failed(r);
}

static void show_progress(run_state *r, double loss)
{
    if (r->rank != 0 || !r->tty) return;
    double now = lawt_now();
    if (now - r->progress_time < 0.25 && r->step != r->last_step) return;
    r->progress_time = now;
    double per_step = r->train_seconds / (double)r->steps_timed;
    char eta[32];
    format_duration(per_step * (double)(r->last_step - r->step), eta, sizeof eta);
    fprintf(stderr,
            "\repoch %ld/%d | step %ld/%ld | %.0f ex/s | %.0f tok/s | loss %.4f | lr %.2e | "
            "ETA %s\033[K",
            (r->step - 1) / r->steps_per_epoch + 1, r->cfg->epochs, r->step, r->last_step,
            (double)r->cfg->batch_size / per_step, (double)r->tokens_timed / r->train_seconds, loss,
            r->lr, eta);
    fflush(stderr);
    r->progress_shown = 1;
}

static void log_train(run_state *r, double window_loss)
{
    const trainer_config *cfg = r->cfg;
    char json[512], line[512], eta[32];
    snprintf(json, sizeof json,
             "{\"type\":\"train\",\"step\":%ld,\"examples\":%ld,\"loss\":%.9g,\"lr\":%.9g,"
             "\"time\":%.3f}",
             r->step, r->step * (long)cfg->batch_size, window_loss, r->lr, wall_seconds(r));
    record_metrics(r, json);
    double per_step = r->train_seconds / (double)r->steps_timed;
    format_duration(per_step * (double)(r->last_step - r->step), eta, sizeof eta);
    snprintf(line, sizeof line,
             "train  epoch %ld | step %ld/%ld | loss %.4f | lr %.2e | %.0f ex/s | %.0f tok/s | "
             "ETA %s",
             (r->step - 1) / r->steps_per_epoch + 1, r->step, r->last_step, window_loss, r->lr,
             (double)cfg->batch_size / per_step, (double)r->tokens_timed / r->train_seconds, eta);
    /* On a terminal the progress line shows this; elsewhere it is the only sign of life. */
    if (r->tty) log_line(r, line);
    else say(r, "%s", line);
}

static model_backend choose_backend(run_state *r)
{
    switch (r->cfg->device) {
    case DEVICE_CPU: return BACKEND_CPU;
    case DEVICE_CUDA: return BACKEND_CUDA; /* model_create names the problem if unavailable */
    default: return model_cuda_available() ? BACKEND_CUDA : BACKEND_CPU;
    }
}

static void allocate_buffers(run_state *r)
{
    const trainer_config *cfg = r->cfg;
    int rows = cfg->eval_batch;
    r->src = lawt_malloc((size_t)rows * r->max_src * sizeof(int));
    r->tgt = lawt_malloc((size_t)rows * r->max_tgt * sizeof(int));
    r->src_len = lawt_malloc((size_t)rows * sizeof(int));
    r->tgt_len = lawt_malloc((size_t)rows * sizeof(int));
    size_t in_coeffs = datagen_max_input_coeffs(&cfg->data);
    r->out_coeffs = datagen_max_output_coeffs(&cfg->data);
    r->inputs = lawt_malloc((size_t)cfg->eval_batch * sizeof *r->inputs);
    r->targets = lawt_malloc((size_t)cfg->eval_batch * sizeof *r->targets);
    double *in = lawt_malloc((size_t)cfg->eval_batch * in_coeffs * sizeof(double));
    double *out = lawt_malloc((size_t)cfg->eval_batch * r->out_coeffs * sizeof(double));
    for (int j = 0; j < cfg->eval_batch; j++) {
        r->inputs[j] = (lawt_matrix){0, 0, in + (size_t)j * in_coeffs};
        r->targets[j] = (lawt_matrix){0, 0, out + (size_t)j * r->out_coeffs};
    }
    r->tasks = lawt_malloc((size_t)cfg->eval_batch * sizeof *r->tasks);
    r->pred_coeffs = lawt_malloc(r->out_coeffs * sizeof(double));
    r->pred = lawt_malloc((size_t)cfg->eval_batch * r->max_out * sizeof(int));
    r->pred_len = lawt_malloc((size_t)cfg->eval_batch * sizeof(int));
    if (r->ranks > 1 && !r->nccl && model_get_backend(r->model) != BACKEND_CPU)
        r->grads = lawt_malloc(model_num_params(r->model) * sizeof(float));
}

static void free_buffers(run_state *r)
{
    free(r->src);
    free(r->tgt);
    free(r->src_len);
    free(r->tgt_len);
    free(r->inputs[0].a);
    free(r->targets[0].a);
    free(r->inputs);
    free(r->targets);
    free(r->tasks);
    free(r->pred_coeffs);
    free(r->pred);
    free(r->pred_len);
    free(r->grads);
}

/* Continues from a checkpoint: weights, Adam moments, counters and the metrics history. */
static void resume(run_state *r, const char *path)
{
    char err[1024];
    checkpoint_meta meta;
    if (checkpoint_read_meta(path, &meta, err, sizeof err)) comm_abort(r->comm, 1, "%s", err);
    if (checkpoint_load(path, r->model, 1, err, sizeof err)) comm_abort(r->comm, 1, "%s", err);
    if (checkpoint_check_progress(path, &meta, r->cfg->batch_size, r->steps_per_epoch,
                                  r->total_steps, err, sizeof err))
        comm_abort(r->comm, 1, "%s", err);
    r->step = meta.step;
    r->test_index = meta.test_index;
    r->lr = meta.lr;
    r->best_accuracy = meta.best_accuracy;
    r->wall_before = meta.wall_seconds;
    if (r->rank == 0 && meta.metrics_jsonl) text_append(&r->metrics, meta.metrics_jsonl);
    checkpoint_meta_free(&meta);
}

/* Opens (creating) name of the run directory for appending; dies naming it when it cannot. */
static int open_for_append(run_state *r, const char *name)
{
    char path[CONFIG_TEXT_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", r->cfg->dir, name);
    /* Read too: the last byte tells whether the file ends inside a line. */
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) comm_abort(r->comm, 1, "cannot open %s: %s", path, strerror(errno));
    return fd;
}

/* Size of the open file fd, and whether it ends inside a line (its last byte is not '\n'). */
static off_t ends_inside_line(int fd, int *torn)
{
    struct stat st;
    char last = '\n';
    *torn = 0;
    if (fstat(fd, &st) != 0) return 0;
    if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1) *torn = last != '\n';
    return st.st_size;
}

/* A line cut short by a killed process or a full disk ends the file: it gets its '\n' and
 * stays, visibly broken (readers skip lines that do not parse); nothing is cut away. */
static void close_torn_line(run_state *r, int *fd, const char *name)
{
    int torn;
    ends_inside_line(*fd, &torn);
    if (!torn) return;
    append_to(r, fd, name, "\n", 1);
    shout(r, "warning: %s/%s ended inside a line (a write cut short: a killed process or a full "
          "disk); that line is kept as it is and ended, readers skip it", r->cfg->dir, name);
}

/* config.ini: the configuration the directory was created with, never rewritten; a later
 * segment (resume, evaluation) with another configuration appends its own as comment lines
 * (config.ini still parses to the first). */
static void write_config_ini(run_state *r)
{
    char path[CONFIG_TEXT_MAX + 64];
    snprintf(path, sizeof path, "%s/config.ini", r->cfg->dir);
    const char *text = r->opt->config_text;
    FILE *f = fopen(path, "rb");
    int same = 0;
    if (f) {
        size_t n = strlen(text);
        char *old = lawt_malloc(n + 1);
        same = fread(old, 1, n + 1, f) == n && memcmp(old, text, n) == 0;
        free(old);
        fclose(f);
        if (same) return;
    }
    int fd = open_for_append(r, "config.ini");
    int torn;
    off_t size = ends_inside_line(fd, &torn);
    if (size > 0) {
        char head[2 * CONFIG_TEXT_MAX + 128], what[2 * CONFIG_TEXT_MAX];
        if (r->opt->evaluate_path)
            snprintf(what, sizeof what, "an evaluation of %s", r->opt->evaluate_path);
        else if (r->opt->resume_path)
            snprintf(what, sizeof what, "resumed at step %ld", r->step);
        else
            snprintf(what, sizeof what, "a new run (the one before left no checkpoint)");
        snprintf(head, sizeof head, "%s;\n; ---- %s, with this configuration:\n", torn ? "\n" : "",
                 what);
        append_to(r, &fd, "config.ini", head, strlen(head));
        for (const char *p = text; *p && fd >= 0;) {
            size_t n = strcspn(p, "\n");
            append_to(r, &fd, "config.ini", "; ", 2);
            append_to(r, &fd, "config.ini", p, n);
            append_to(r, &fd, "config.ini", "\n", 1);
            p += n + (p[n] == '\n');
        }
    } else {
        append_to(r, &fd, "config.ini", text, strlen(text));
    }
    if (fd >= 0) close(fd);
}

/* Rank 0 opens the run directory (claimed by trainer_claim_run_dir): removes the temporary
 * files of killed checkpoint writes, then appends to train.log and metrics.jsonl. A resume
 * into a directory without metrics (another --run-dir) starts them with the checkpoint's
 * history. */
static void open_run_dir(run_state *r)
{
    if (r->rank != 0 || !r->cfg->dir[0]) return;
    write_config_ini(r);
    r->log_fd = open_for_append(r, "train.log");
    close_torn_line(r, &r->log_fd, "train.log");
    char stray[1024];
    int removed = checkpoint_remove_stray_tmp(r->cfg->dir, stray, sizeof stray);
    if (removed)
        say(r, "removed %d temporary file%s of checkpoint writes that did not finish: %s", removed,
            removed > 1 ? "s" : "", stray);
    r->metrics_fd = open_for_append(r, "metrics.jsonl");
    close_torn_line(r, &r->metrics_fd, "metrics.jsonl");
    int torn;
    off_t size = ends_inside_line(r->metrics_fd, &torn);
    if (size == 0 && r->metrics.text)
        append_to(r, &r->metrics_fd, "metrics.jsonl", r->metrics.text, r->metrics.len);
    /* A resume, or a new run after one that left no checkpoint to resume from. */
    if (r->opt->resume_path || (size > 0 && !r->opt->evaluate_path)) {
        char json[512];
        snprintf(json, sizeof json, "{\"type\":\"resume\",\"step\":%ld,\"examples\":%ld}", r->step,
                 r->step * (long)r->cfg->batch_size);
        /* Not in the checkpoint's history: that stays the history of one straight run. */
        size_t n = strlen(json);
        json[n] = '\n';
        append_to(r, &r->metrics_fd, "metrics.jsonl", json, n + 1);
    }
}

static void say_memory_plan(run_state *r, const model_config *mc, model_backend backend,
                            int host_gradients)
{
    run_shape shape = {r->cfg,      mc,        backend,   r->local_batch,
                       r->max_src,  r->max_tgt, r->max_out, host_gradients};
    char text[2048];
    memory_plan_describe(&shape, text, sizeof text);
    say(r, "%s", text);
}

static void print_summary(run_state *r, const model_config *mc)
{
    const trainer_config *cfg = r->cfg;
    const datagen_config *d = &cfg->data;
    const char *reduce = r->ranks == 1 ? "" : r->nccl ? " | all-reduce NCCL" : " | all-reduce MPI";
    int cuda = model_get_backend(r->model) == BACKEND_CUDA;
    const char *precision = enum_name(&MODEL_PRECISION_TABLE, cfg->precision);
    say(r, "lawt %s | %d rank%s x %d thread%s | backend %s %s%s", LAWT_VERSION, r->ranks,
        r->ranks > 1 ? "s" : "", cfg->threads, cfg->threads > 1 ? "s" : "",
        enum_name(&MODEL_BACKEND_TABLE, model_get_backend(r->model)), cuda ? precision : "fp32",
        reduce);
    if (!cuda && cfg->precision != PRECISION_FP32)
        say(r, "note   run.precision = %s applies to the CUDA backend; the CPU computes in fp32",
            precision);
    char rows[32], cols[32], dims[80];
    snprintf(rows, sizeof rows, d->rows_min == d->rows_max ? "%d" : "%d-%d", d->rows_min,
             d->rows_max);
    snprintf(cols, sizeof cols, d->cols_min == d->cols_max ? "%d" : "%d-%d", d->cols_min,
             d->cols_max);
    if (d->cols_max > 0) snprintf(dims, sizeof dims, "%sx%s", rows, cols);
    else if (d->rows_min == d->rows_max) snprintf(dims, sizeof dims, "%sx%s", rows, rows);
    else snprintf(dims, sizeof dims, "%s square", rows);
    say(r, "data   %s%s %s | %s -> %s | source <= %d tokens, target <= %d tokens",
        task_name(d->tasks[0]), d->ntasks > 1 ? " (+ joint tasks)" : "", dims, r->vin.enc.name,
        r->vout.enc.name, r->max_src, r->max_tgt);
    say(r, "model  encoder %d layers x %d dims x %d heads, decoder %d x %d x %d | vocab %d -> %d | "
        "%zu parameters (Appendix G formula: %zu)",
        mc->enc_layers, mc->enc_dim, mc->enc_heads, mc->dec_layers, mc->dec_dim, mc->dec_heads,
        mc->vocab_in, mc->vocab_out, model_num_params(r->model), model_param_count(mc));
    say(r, "train  batch_size %d = batch_per_rank %d x %d rank%s | %ld steps an epoch x %d epochs "
        "= %ld steps%s | lr %g, %s, warm-up %ld | seed %llu",
        cfg->batch_size, r->local_batch, r->ranks, r->ranks > 1 ? "s" : "", r->steps_per_epoch,
        cfg->epochs, r->total_steps,
        r->last_step < r->total_steps ? " (max_steps stops earlier)" : "", cfg->lr,
        enum_name(&LR_SCHEDULE_TABLE, cfg->schedule), cfg->warmup, (unsigned long long)cfg->seed);
    if (r->step > 0)
        say(r, "resume from %s at step %ld (%ld examples)", r->opt->resume_path, r->step,
            r->step * (long)cfg->batch_size);
    else if (cfg->init_from[0] && !r->opt->evaluate_path)
        say(r, "weights from %s (retraining: fresh optimizer and schedule)", cfg->init_from);
}

/* Whether a second thread makes the next batch during the step: by default with the CUDA
 * backend only, since the CPU backend's pool already keeps every core busy. */
static int prefetch(const run_state *r)
{
    switch (r->cfg->prefetch) {
    case PREFETCH_ON: return 1;
    case PREFETCH_OFF: return 0;
    default: return model_get_backend(r->model) == BACKEND_CUDA;
    }
}

/* What stopped the run, for messages: this process's signal, or another rank's. */
static void stop_cause(char *buf, size_t cap)
{
    int sig = comm_stop_signal();
    if (sig) snprintf(buf, cap, "signal %d (%s)", sig, strsignal(sig));
    else snprintf(buf, cap, "a stop signal that another rank received");
}

/* Steps until last_step (or a stop signal), evaluating and checkpointing at epoch ends and at
 * the end. Returns the exit status. */
static int train(run_state *r)
{
    const trainer_config *cfg = r->cfg;
    int status = 0;
    r->batches = batch_source_create(&r->batch_spec, r->step, prefetch(r));
    /* A checkpoint is written after an evaluation (or a stop): resuming does not redo it. */
    long evaluated_at = r->opt->resume_path ? r->step : -1;
    double window_loss = 0;
    long window_steps = 0;
    while (r->step < r->last_step) {
        double t0 = lawt_now();
        long tokens;
        double loss = train_step(r, &tokens);
        if (!isfinite(loss)) {
            char latest[CONFIG_TEXT_MAX + 64] = "none";
            if (cfg->dir[0]) checkpoint_latest(cfg->dir, latest, sizeof latest);
            shout(r, "error: the loss is %g at step %ld: stopped before that step changed the "
                  "weights, no checkpoint written (the latest: %s); lower train.lr or raise "
                  "train.warmup", loss, r->step + 1, latest);
            status = TRAINER_EXIT_DIVERGED;
            break;
        }
        r->train_seconds += lawt_now() - t0;
        r->steps_timed++;
        r->tokens_timed += tokens;
        window_loss += loss;
        window_steps++;
        show_progress(r, loss);
        if (r->step % cfg->log_every == 0 || r->step == r->last_step) {
            log_train(r, window_loss / (double)window_steps);
            window_loss = 0;
            window_steps = 0;
        }
        long epoch = r->step / r->steps_per_epoch;
        int epoch_end = r->step % r->steps_per_epoch == 0;
        if (epoch_end && cfg->eval_every > 0 && epoch % cfg->eval_every == 0) {
            save_checkpoints(r, cfg->eval_size > 0 ? evaluate(r) : -1.0);
            evaluated_at = r->step;
        }
        /* Every rank must stop at the same step: the flags are agreed on, not read. */
        long stop[2] = {comm_stop_requested(), r->write_failed};
        if (r->ranks > 1) comm_allreduce_sum_long(r->comm, stop, 2);
        if (stop[1]) {
            r->write_failed = 1;
            /* A log that cannot be written: the checkpoint still holds the whole history. */
            if (!r->checkpoint_failed) {
                say(r, "stopping at step %ld: a write into the run directory failed; writing a "
                    "checkpoint", r->step);
                save_checkpoints(r, -1.0);
            }
            status = TRAINER_EXIT_WRITE_FAILED;
            break;
        }
        if (stop[0]) {
            char cause[128];
            stop_cause(cause, sizeof cause);
            say(r, "stopping at step %ld on %s%s", r->step, cause,
                cfg->dir[0] ? "; writing a checkpoint" : "");
            save_checkpoints(r, -1.0);
            status = r->write_failed ? TRAINER_EXIT_WRITE_FAILED : TRAINER_EXIT_STOPPED;
            break;
        }
    }
    batch_source_free(r->batches);
    r->batches = NULL;
    if (status == 0 && evaluated_at != r->step)
        save_checkpoints(r, cfg->eval_size > 0 ? evaluate(r) : -1.0);
    if (status == 0 && agree_write_failed(r)) status = TRAINER_EXIT_WRITE_FAILED;
    if (status == TRAINER_EXIT_WRITE_FAILED) {
        char latest[CONFIG_TEXT_MAX + 64] = "none";
        checkpoint_latest(cfg->dir, latest, sizeof latest);
        shout(r, "stopped at step %ld: a write into %s failed (above); the latest checkpoint "
              "there: %s", r->step, cfg->dir, latest);
    }
    say(r, "%s: %ld steps, %ld examples, %.1f s", status ? "stopped" : "done", r->step,
        r->step * (long)cfg->batch_size, wall_seconds(r));
    if (r->rank == 0) {
        /* train.log's copy of the summary goes through a memory stream, so that its write is
         * checked like every other (a failure here: status 74 at the end of trainer_run). */
        char *summary = NULL;
        size_t len = 0;
        FILE *mem = r->log_fd >= 0 ? open_memstream(&summary, &len) : NULL;
        curves_end_of_run(r->metrics.text, r->step * (long)cfg->batch_size, wall_seconds(r), cfg->dir,
                          mem);
        if (mem) {
            fclose(mem);
            append_to(r, &r->log_fd, "train.log", summary, len);
        }
        free(summary);
    }
    return status;
}

int trainer_run(const trainer_config *cfg, const trainer_options *opt, comm *c)
{
    run_state run = {0};
    run_state *r = &run;
    r->cfg = cfg;
    r->opt = opt;
    r->comm = c;
    r->rank = comm_rank(c);
    r->ranks = comm_size(c);
    r->t_start = lawt_now();
    r->tty = isatty(fileno(stderr));
    r->best_accuracy = -1.0;
    r->log_fd = r->metrics_fd = -1;
    r->fault_nan_step = lawt_fault_setting("LAWT_FAULT_NAN_AT_STEP");
    int status = 0;
    /* A fixed thread count fixes how each product is split, hence its rounding. */
    model_set_threads(cfg->threads);

    lawt_encoding enc_in, enc_out;
    encoding_from_name(cfg->encoding, &enc_in);
    encoding_from_name(cfg->out_encoding[0] ? cfg->out_encoding : cfg->encoding, &enc_out);
    vocab_init(&r->vin, &enc_in);
    vocab_init(&r->vout, &enc_out);
    r->max_src = datagen_max_src_len(&cfg->data, &enc_in);
    r->max_tgt = datagen_max_tgt_len(&cfg->data, &enc_out);
    r->max_out = r->max_tgt - 2;

    model_config mc = config_model(cfg);
    char err[1024];
    if (model_config_validate(&mc, err, sizeof err)) comm_abort(c, 2, "[model]: %s", err);
    r->local_batch = cfg->batch_size / r->ranks;
    r->steps_per_epoch = (cfg->epoch_size + cfg->batch_size - 1) / cfg->batch_size;
    r->total_steps = r->steps_per_epoch * cfg->epochs;
    r->last_step = cfg->max_steps > 0 && cfg->max_steps < r->total_steps ? cfg->max_steps
                                                                          : r->total_steps;
    model_backend backend = choose_backend(r);
    if (opt->memory_plan) {
        if (opt->memory_plan > 0) backend = (model_backend)(opt->memory_plan - 1);
        say_memory_plan(r, &mc, backend, backend == BACKEND_CUDA && r->ranks > 1 &&
                                             !comm_nccl_built());
        vocab_free(&r->vin);
        vocab_free(&r->vout);
        return 0;
    }
    if (backend == BACKEND_CUDA) {
        model_set_cuda_precision((model_precision)cfg->precision);
        /* One GPU a process: comm_nccl_init picks it from the local rank, and so does the model
         * when there is no NCCL. */
        model_set_cuda_device_for_rank(comm_local_rank(c));
        if (r->ranks > 1 && comm_nccl_built()) r->nccl = comm_nccl_init(c);
    }
    /* evaluation decodes in chunks of the training batch: it does not size the activations */
    r->model = model_create(&mc, backend, r->local_batch);
    model_init_params(r->model, cfg->seed);
    r->batch_spec = (batch_spec){&cfg->data, &r->vin, &r->vout, cfg->seed, cfg->batch_size,
                                 r->rank, r->local_batch, r->max_src, r->max_tgt};
    allocate_buffers(r);
    if (opt->evaluate_path) {
        if (checkpoint_load_for_retraining(opt->evaluate_path, r->model, err, sizeof err))
            comm_abort(c, 1, "--evaluate: %s", err);
    } else if (opt->resume_path) {
        resume(r, opt->resume_path);
    } else if (cfg->init_from[0] &&
               checkpoint_load_for_retraining(cfg->init_from, r->model, err, sizeof err)) {
        comm_abort(c, 1, "[run] init_from: %s", err);
    }
    open_run_dir(r);
    print_summary(r, &mc);
    say_memory_plan(r, &mc, backend, r->grads != NULL);

    /* A stop signal that came while the model was built or a checkpoint loaded (the handler
     * is installed at start): nothing trained yet, so nothing to checkpoint. */
    if (comm_any(c, comm_stop_requested())) {
        char cause[128];
        stop_cause(cause, sizeof cause);
        shout(r, "stopping before %s on %s: nothing new to checkpoint",
              opt->evaluate_path ? "the evaluation" : "training", cause);
        status = TRAINER_EXIT_STOPPED;
    } else if (opt->evaluate_path) {
        say(r, "evaluating %s on examples 0 to %ld of the test stream (seed %llu)",
            opt->evaluate_path, cfg->eval_size - 1, (unsigned long long)cfg->seed);
        evaluate(r);
        if (r->evaluation_stopped) {
            char cause[128];
            stop_cause(cause, sizeof cause);
            shout(r, "stopping the evaluation on %s: no result recorded", cause);
            status = TRAINER_EXIT_STOPPED;
        }
    } else if (opt->dry_run) {
        long tokens;
        batch_source *one = batch_source_create(&r->batch_spec, r->step, 0);
        batch_source_next(one, r->step, &tokens); /* the data path works too */
        batch_source_free(one);
        say(r, "dry run: configuration, data and model are ready; nothing trained");
    } else {
        status = train(r);
    }
    if (status == 0 && agree_write_failed(r)) {
        shout(r, "a write into %s failed (above)", cfg->dir);
        status = TRAINER_EXIT_WRITE_FAILED;
    }

    free_buffers(r);
    model_free(r->model);
    comm_nccl_free(r->nccl);
    vocab_free(&r->vin);
    vocab_free(&r->vout);
    free(r->metrics.text);
    if (r->log_fd >= 0) close(r->log_fd);
    if (r->metrics_fd >= 0) close(r->metrics_fd);
    return status;
}
