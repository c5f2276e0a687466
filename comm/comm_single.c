/* comm_single.c: comm.h without MPI (-DLAWT_WITH_MPI=OFF): one process, rank 0 of 1. A sum or
 * a mean over one rank is the buffer itself and a broadcast from rank 0 leaves it as it is, so
 * the collectives only check their arguments as MPI would (a root other than 0 is an error)
 * and take no time (comm_seconds stays 0). A workstation or a GPU machine without Open MPI runs lawt_dist with it;
 * the trainer cannot tell the difference from a singleton MPI run. */
#include "comm/comm.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"

struct comm {
    size_t max_chunk; /* kept for comm_set_max_chunk's contract; nothing is split here */
};

comm *comm_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    comm *c = lawt_calloc(1, sizeof *c);
    c->max_chunk = (size_t)1 << 28;
    return c;
}

void comm_finalize(comm *c) { free(c); }

int comm_rank(const comm *c)
{
    (void)c;
    return 0;
}

int comm_size(const comm *c)
{
    (void)c;
    return 1;
}

int comm_local_rank(const comm *c)
{
    (void)c;
    return 0;
}

int comm_local_size(const comm *c)
{
    (void)c;
    return 1;
}

double comm_seconds(const comm *c)
{
    (void)c;
    return 0.0;
}

void comm_set_max_chunk(comm *c, size_t elements)
{
    c->max_chunk = elements < 1 ? 1 : (elements > INT_MAX ? INT_MAX : elements);
}

void comm_abort(comm *c, int code, const char *fmt, ...)
{
    (void)c;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    fprintf(stderr, "lawt: rank 0 (host %s, pid %ld): %s\n", host, (long)getpid(), msg);
    fflush(stderr);
    fflush(stdout);
    _exit(code == 0 ? 1 : code);
}

void comm_allreduce_sum_float(comm *c, float *buf, size_t n)
{
    (void)c;
    (void)buf;
    (void)n;
}

void comm_allreduce_sum_double(comm *c, double *buf, size_t n)
{
    (void)c;
    (void)buf;
    (void)n;
}

void comm_allreduce_sum_long(comm *c, long *buf, size_t n)
{
    (void)c;
    (void)buf;
    (void)n;
}

void comm_allreduce_mean_float(comm *c, float *buf, size_t n)
{
    (void)c;
    (void)buf;
    (void)n;
}

void comm_broadcast(comm *c, void *buf, size_t bytes, int root)
{
    (void)buf;
    (void)bytes;
    if (root != 0) comm_abort(c, 1, "comm_broadcast: root %d, but the only rank is 0", root);
}

char *comm_broadcast_string(comm *c, const char *s, int root)
{
    comm_broadcast(c, NULL, 0, root);
    const size_t len = s ? strlen(s) : 0;
    char *out = lawt_malloc(len + 1);
    if (len) memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

void comm_barrier(comm *c) { (void)c; }

int comm_any(comm *c, int flag)
{
    (void)c;
    return flag != 0;
}
