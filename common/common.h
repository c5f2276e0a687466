/* common.h: what every lawt component shares: the task list, the matrix type,
 * fatal-error reporting and small utilities. Nothing here knows about a model. */
#ifndef LAWT_COMMON_H
#define LAWT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define LAWT_MAX_DIM 100 /* dimension tokens are V1 .. V100 */

/* One table per enumeration: an X-macro lists each value once, with its name (as configs,
 * command lines and messages spell it) and its meaning; the enum and the name table are both
 * made from it, so a name cannot drift from its value. */
typedef struct {
    const char *name, *help;
} enum_entry;
typedef struct {
    const enum_entry *entries;
    int count;
} enum_table;

#define ENUM_VALUE(id, name, help) id,
#define ENUM_ENTRY(id, name, help) {name, help},
/* ", name" for each value: &LIST(ENUM_NAME_LISTED)[2] is the string literal of the names
 * joined by ", ". */
#define ENUM_NAME_LISTED(id, name, help) ", " name
/* "|name": &LIST(ENUM_NAME_PIPED)[1] is "a|b|c", the index of a name its value. */
#define ENUM_NAME_PIPED(id, name, help) "|" name
/* Defines `const enum_table var` from the X-macro LIST. */
#define ENUM_TABLE_DEFINE(var, LIST)                                                        \
    static const enum_entry var##_entries_[] = {LIST(ENUM_ENTRY)};                         \
    const enum_table var = {var##_entries_, (int)(sizeof var##_entries_ / sizeof var##_entries_[0])}

/* The value named `name`, or -1. */
int enum_from_name(const enum_table *t, const char *name);
/* The name of `value`, or "unknown" outside the table. */
const char *enum_name(const enum_table *t, int value);
/* The names joined by sep ("cosine|constant|inverse_sqrt") into buf; returns buf. */
const char *enum_names_join(const enum_table *t, const char *sep, char *buf, size_t cap);

/* The tasks of the paper, one row each. A problem has an m x n matrix M (square tasks: m = n;
 * k = min(m, n)). The input has m rows and a*n + b columns, (a, b) the input columns of the
 * row (add, matmul: [M | N]; matvec: [M | v]); each output dimension is a*m + b*n + c*k + d,
 * (a, b, c, d) its four numbers. Square: m = n. Symmetric: the input is a symmetric matrix.
 * The task's token in vocabularies is "<name>".
 *
 *        id                   name              input   output rows  output cols  square
 *                                               cols    m  n  k  1   m  n  k  1      symmetric
 *                                               n  1                                          */
#define LAWT_TASKS(X)                                                                       \
    X(TASK_TRANSPOSE,      "transpose",      1, 0,   0, 1, 0, 0,  1, 0, 0, 0,  0, 0)        \
    X(TASK_ADD,            "add",            2, 0,   1, 0, 0, 0,  0, 1, 0, 0,  0, 0)        \
    X(TASK_MATVEC,         "matvec",         1, 1,   0, 1, 0, 0,  0, 0, 0, 1,  0, 0)        \
    X(TASK_MATMUL,         "matmul",         2, 0,   0, 1, 0, 0,  0, 1, 0, 0,  0, 0)        \
    X(TASK_EIGENVALUES,    "eigenvalues",    1, 0,   0, 1, 0, 0,  0, 0, 0, 1,  1, 1)        \
    X(TASK_EIGENVECTORS,   "eigenvectors",   1, 0,   0, 1, 0, 1,  0, 1, 0, 0,  1, 1)        \
    X(TASK_SINGULARVALUES, "singularvalues", 1, 0,   0, 0, 1, 0,  0, 0, 0, 1,  0, 0)        \
    X(TASK_SVD,            "svd",            1, 0,   1, 1, 0, 1,  0, 0, 1, 0,  0, 0)        \
    X(TASK_INVERSION,      "inversion",      1, 0,   0, 1, 0, 0,  0, 1, 0, 0,  1, 0)

#define LAWT_TASK_LISTED(id, name, ...) ", " name /* as ENUM_NAME_LISTED */
#define LAWT_TASK_VALUE(id, ...) id,
typedef enum { LAWT_TASKS(LAWT_TASK_VALUE) LAWT_TASK_COUNT } lawt_task;
#undef LAWT_TASK_VALUE

/* A dimension as a combination of the problem's sizes: m*rule.m + n*rule.n + k*rule.k + rule.one. */
typedef struct {
    signed char m, n, k, one;
} task_dim_rule;

typedef struct {
    const char *name;
    signed char in_cols_n, in_cols_one; /* input columns: in_cols_n * n + in_cols_one */
    task_dim_rule out_rows, out_cols;
    signed char square, symmetric;
} task_info;

/* The row of `task` (which must be a lawt_task). */
const task_info *task_get(lawt_task task);
/* "transpose", "add", ..., "inversion" ("unknown" outside the table); task_from_name returns
 * -1 for an unknown name. */
const char *task_name(lawt_task task);
int task_from_name(const char *name);
/* The names joined by ", " for error messages. */
const char *task_names_list(void);
/* Input (m rows) and output shapes of the task's m x n problem. */
void task_input_shape(lawt_task task, int m, int n, int *rows, int *cols);
void task_output_shape(lawt_task task, int m, int n, int *rows, int *cols);
/* The problem sizes m x n (>= 1) of an input of rows x cols; -1 when no problem has it. */
int task_problem_of_input(lawt_task task, int rows, int cols, int *m, int *n);

/* A dense row-major matrix over a caller-owned buffer; a vector is an n x 1 matrix. */
typedef struct {
    int rows, cols;
    double *a;
} lawt_matrix;

#define MAT(m, i, j) ((m)->a[(size_t)(i) * (size_t)(m)->cols + (size_t)(j)])

/* Prints "lawt: error: <message>" to stderr and exits with status 1. */
void lawt_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Allocation that never returns NULL: on failure it dies naming the size and the caller. */
void *lawt_malloc_at(size_t bytes, const char *file, int line);
void *lawt_calloc_at(size_t count, size_t size, const char *file, int line);
#define lawt_malloc(bytes) lawt_malloc_at((bytes), __FILE__, __LINE__)
#define lawt_calloc(count, size) lawt_calloc_at((count), (size), __FILE__, __LINE__)

/* Monotonic wall clock in seconds. */
double lawt_now(void);

/* A bounded string builder: appends printf-style text to buf (cap bytes, *len of them used,
 * always NUL-terminated). Text past the capacity is cut, never written past it; *len stays
 * at most cap - 1. */
typedef struct {
    char *buf;
    size_t cap, len;
} lawt_text;
void lawt_appendf(lawt_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses "5" or "5-15" into [lo, hi]; returns 0, or -1 when malformed or out of [1, LAWT_MAX_DIM]. */
int parse_dim_range(const char *s, int *lo, int *hi);

/* Writes all n bytes to fd, retrying short writes and EINTR: the one writer of the files of
 * a run directory (checkpoints, train.log, metrics.jsonl). Returns 0, or -1 with errno set
 * (ENOSPC, EDQUOT, EIO, ...).
 * Fault injection (tests): with LAWT_FAULT_WRITE_FAIL_AFTER=N in the environment, the writes
 * of this process fail with ENOSPC once N bytes in all went through, the last one cut short,
 * as on a disk that fills up; unset, it costs one comparison a call. */
int lawt_write_all(int fd, const void *buf, size_t n);

/* A fault-injection setting from the environment (tests/README.md lists them): its value, a
 * non-negative integer, or -1 when unset; any other value dies naming the variable. */
long lawt_fault_setting(const char *name);

#endif
