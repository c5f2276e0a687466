/* common.h: what every lawt component shares: the task list, the matrix type,
 * fatal-error reporting and small utilities. Nothing here knows about a model. */
#ifndef LAWT_COMMON_H
#define LAWT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define LAWT_MAX_DIM 100 /* dimension tokens are V1 .. V100 */

typedef enum {
    TASK_TRANSPOSE,
    TASK_ADD,
    TASK_MATVEC,
    TASK_MATMUL,
    TASK_EIGENVALUES,
    TASK_EIGENVECTORS,
    TASK_SINGULARVALUES,
    TASK_SVD,
    TASK_INVERSION,
    LAWT_TASK_COUNT
} lawt_task;

/* "transpose", "add", ..., "inversion"; task_from_name returns -1 for an unknown name. */
const char *task_name(lawt_task task);
int task_from_name(const char *name);
/* The names joined by ", " for error messages. */
const char *task_names_list(void);

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
