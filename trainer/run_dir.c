/* run_dir.c: the run directory. Claiming it (run.lock, held by one trainer at a time), opening
 * it (config.ini, train.log and metrics.jsonl only ever appended to, a torn last line ended
 * and kept, stray temporary files of killed checkpoint writes removed), the checkpoints
 * (step-<step>.h5 with retention, best.h5) and resuming from one. Nothing here overwrites or
 * truncates a run's history. */
#include "trainer/train_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"

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
int agree_write_failed(run_state *r)
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
void save_checkpoints(run_state *r, double accuracy)
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

/* Continues from a checkpoint: weights, Adam moments, counters and the metrics history. */
void resume(run_state *r, const char *path)
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
void open_run_dir(run_state *r)
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
