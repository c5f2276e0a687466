#include "common/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int enum_from_name(const enum_table *t, const char *name)
{
    for (int i = 0; i < t->count; i++)
        if (strcmp(name, t->entries[i].name) == 0) return i;
    return -1;
}

const char *enum_name(const enum_table *t, int value)
{
    return value >= 0 && value < t->count ? t->entries[value].name : "unknown";
}

const char *enum_names_join(const enum_table *t, const char *sep, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->count && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? sep : "", t->entries[i].name);
    return buf;
}

#define LAWT_TASK_ROW(id, name, icn, ic1, rm, rn, rk, r1, cm, cn, ck, c1, square, symmetric) \
    {name, icn, ic1, {rm, rn, rk, r1}, {cm, cn, ck, c1}, square, symmetric},
static const task_info TASKS[LAWT_TASK_COUNT] = {LAWT_TASKS(LAWT_TASK_ROW)};
#undef LAWT_TASK_ROW

const task_info *task_get(lawt_task task) { return &TASKS[task]; }

const char *task_name(lawt_task task)
{
    return (task >= 0 && task < LAWT_TASK_COUNT) ? TASKS[task].name : "unknown";
}

int task_from_name(const char *name)
{
    for (int t = 0; t < LAWT_TASK_COUNT; t++)
        if (strcmp(name, TASKS[t].name) == 0) return t;
    return -1;
}

const char *task_names_list(void)
{
    return &LAWT_TASKS(LAWT_TASK_LISTED)[2];
}

static int task_dim(task_dim_rule r, int m, int n)
{
    int k = m < n ? m : n;
    return r.m * m + r.n * n + r.k * k + r.one;
}

void task_input_shape(lawt_task task, int m, int n, int *rows, int *cols)
{
    *rows = m;
    *cols = TASKS[task].in_cols_n * n + TASKS[task].in_cols_one;
}

void task_output_shape(lawt_task task, int m, int n, int *rows, int *cols)
{
    *rows = task_dim(TASKS[task].out_rows, m, n);
    *cols = task_dim(TASKS[task].out_cols, m, n);
}

int task_problem_of_input(lawt_task task, int rows, int cols, int *m, int *n)
{
    const task_info *t = &TASKS[task];
    int rest = cols - t->in_cols_one;
    if (rows < 1 || rest < t->in_cols_n || rest % t->in_cols_n) return -1;
    *m = rows;
    *n = rest / t->in_cols_n;
    return t->square && *m != *n ? -1 : 0;
}

void lawt_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lawt: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void *lawt_malloc_at(size_t bytes, const char *file, int line)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) lawt_die("%s:%d: out of memory allocating %zu bytes", file, line, bytes);
    return p;
}

void *lawt_calloc_at(size_t count, size_t size, const char *file, int line)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) lawt_die("%s:%d: out of memory allocating %zu x %zu bytes", file, line, count, size);
    return p;
}

double lawt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_dim(const char *s, char **end)
{
    errno = 0;
    long v = strtol(s, end, 10);
    if (errno || *end == s || v < 1 || v > LAWT_MAX_DIM) return -1;
    return (int)v;
}

int parse_dim_range(const char *s, int *lo, int *hi)
{
    char *end;
    int a = parse_dim(s, &end);
    if (a < 0) return -1;
    int b = a;
    if (*end == '-') {
        b = parse_dim(end + 1, &end);
        if (b < 0) return -1;
    }
    if (*end != '\0' || b < a) return -1;
    *lo = a;
    *hi = b;
    return 0;
}

void lawt_appendf(lawt_text *t, const char *fmt, ...)
{
    if (t->cap == 0 || t->len >= t->cap - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n > 0) t->len = (size_t)n < t->cap - t->len ? t->len + (size_t)n : t->cap - 1;
}
