/* checked_write.c: every byte lawt writes into a run directory (checkpoints, train.log,
 * metrics.jsonl) goes through lawt_write_all, so that a full disk is one code path, and one
 * place for the fault-injection hook (common.h). */
#include "common/common.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

long lawt_fault_setting(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) return -1;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < 0) lawt_die("%s = '%s': not a non-negative integer", name, v);
    return n;
}

int lawt_write_all(int fd, const void *buf, size_t n)
{
    /* Bytes left before LAWT_FAULT_WRITE_FAIL_AFTER makes writes fail; -1: no limit (the
     * variable unset, the normal case); -2: not read yet. */
    static long budget = -2;
    if (budget == -2) budget = lawt_fault_setting("LAWT_FAULT_WRITE_FAIL_AFTER");
    const char *p = buf;
    while (n > 0) {
        size_t chunk = n;
        if (budget == 0) {
            errno = ENOSPC;
            return -1;
        }
        if (budget > 0 && (size_t)budget < chunk) chunk = (size_t)budget;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (budget > 0) budget -= w;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}
