#include "common/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const TASK_NAMES[LAWT_TASK_COUNT] = {
    "transpose",   "add",            "matvec", "matmul",    "eigenvalues",
    "eigenvectors", "singularvalues", "svd",    "inversion",
};

const char *task_name(lawt_task task)
{
    return (task >= 0 && task < LAWT_TASK_COUNT) ? TASK_NAMES[task] : "unknown";
}

int task_from_name(const char *name)
{
    for (int t = 0; t < LAWT_TASK_COUNT; t++)
        if (strcmp(name, TASK_NAMES[t]) == 0) return t;
    return -1;
}

const char *task_names_list(void)
{
    return "transpose, add, matvec, matmul, eigenvalues, eigenvectors, singularvalues, svd, inversion";
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
