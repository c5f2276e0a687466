/* run_log.c: what a run tells: train.log and the terminal (say, shout, the progress line on a
 * terminal, the train lines) and metrics.jsonl (record_metrics, whose records also make the
 * history that checkpoints carry). Rank 0 writes everything; every write into the run
 * directory is checked, and the first failure stops the run at the next check. */
#include "trainer/train_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void text_append(text_buffer *b, const char *s)
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

/* Appends text to the run directory's file fd (named name): one checked write. The first
 * failure is reported on stderr with the file and the errno, the file is written no more and
 * the run stops at the next check (TRAINER_EXIT_WRITE_FAILED). */
void append_to(run_state *r, int *fd, const char *name, const char *text, size_t n)
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

void log_line(run_state *r, const char *line)
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

void say(run_state *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(r, stdout, fmt, ap);
    va_end(ap);
}

/* A line that ends the run or warns of lost data: stderr and train.log. */
void shout(run_state *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(r, stderr, fmt, ap);
    va_end(ap);
}

void record_metrics(run_state *r, const char *json)
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

double wall_seconds(const run_state *r) { return r->wall_before + lawt_now() - r->t_start; }

static void format_duration(double s, char *buf, size_t cap)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

/* The progress line, on a terminal only: redrawn in place at most four times a second, so
 * that short steps do not spend their time writing it. */
void show_progress(run_state *r, double loss)
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

/* One train record, and its line: the loss is the mean over the steps since the last one. */
void log_train(run_state *r, double window_loss)
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
