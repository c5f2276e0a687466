/* comm.c: the MPI implementation of comm.h.
 *
 * Errors: MPI_ERRORS_RETURN is set on the communicators, and every call goes through
 * MPI_CHECK, which names the file, the line, the call and MPI's message, then brings the whole
 * job down with comm_abort. MPI_Abort makes the launcher (mpirun, or srun/slurmstepd) kill
 * every other rank, so a failing rank never leaves the others hanging in a collective. */
#include "comm/comm.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "common/common.h"

struct comm {
    MPI_Comm world;      /* a duplicate of MPI_COMM_WORLD: our collectives never mix with others' */
    int rank, size;
    int local_rank, local_size;
    int we_initialized;  /* 1 when comm_init called MPI_Init (so comm_finalize calls MPI_Finalize) */
    size_t max_chunk;    /* elements (or bytes) per MPI call */
    double seconds;      /* time spent inside collectives */
};

#define COMM_DEFAULT_CHUNK ((size_t)1 << 28)

/* The communicator between comm_init and comm_finalize: a process that exits in between
 * (lawt_die, exit, a return from main) takes the whole job down at once, naming its rank. */
static comm *live_comm;
static void exit_without_finalize(void);

/* The rank to name in messages when c is not (yet) usable. */
static int world_rank_or_minus1(void)
{
    int init = 0, fin = 0, r = -1;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin && MPI_Comm_rank(MPI_COMM_WORLD, &r) != MPI_SUCCESS) r = -1;
    return r;
}

void comm_abort(comm *c, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    live_comm = NULL; /* no second report from the exit handler */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int rank = c ? c->rank : world_rank_or_minus1();
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    if (rank >= 0)
        fprintf(stderr, "lawt: rank %d (host %s, pid %ld): %s\n", rank, host, (long)getpid(), msg);
    else
        fprintf(stderr, "lawt: %s\n", msg);
    fflush(stderr);
    fflush(stdout);
    if (code == 0) code = 1;
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin) MPI_Abort(MPI_COMM_WORLD, code);
    /* Only reached without MPI (or if MPI_Abort returned, which it should not). */
    _exit(code);
}

static void mpi_failed(comm *c, int rc, const char *file, int line, const char *call)
{
    char text[MPI_MAX_ERROR_STRING + 1] = "";
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error %d", rc);
    text[len >= 0 && len <= MPI_MAX_ERROR_STRING ? len : 0] = '\0';
    comm_abort(c, 1, "%s:%d: %s failed: %s", file, line, call, text);
}

#define MPI_CHECK(c, call)                                                  \
    do {                                                                    \
        int mpi_rc_ = (call);                                               \
        if (mpi_rc_ != MPI_SUCCESS) mpi_failed((c), mpi_rc_, __FILE__, __LINE__, #call); \
    } while (0)

comm *comm_init(int *argc, char ***argv)
{
    int init = 0, fin = 0;
    MPI_CHECK(NULL, MPI_Finalized(&fin));
    if (fin) comm_abort(NULL, 1, "comm_init: MPI was already finalized");
    MPI_CHECK(NULL, MPI_Initialized(&init));
    comm *c = lawt_calloc(1, sizeof *c);
    if (!init) {
        int provided = 0;
        MPI_CHECK(NULL, MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
        c->we_initialized = 1;
        if (provided < MPI_THREAD_FUNNELED)
            comm_abort(NULL, 1, "comm_init: MPI provides thread level %d, lawt needs MPI_THREAD_FUNNELED", provided);
    }
    /* Errors are returned to us (and reported by MPI_CHECK), not fatal inside MPI. */
    MPI_CHECK(NULL, MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_CHECK(NULL, MPI_Comm_dup(MPI_COMM_WORLD, &c->world));
    MPI_CHECK(NULL, MPI_Comm_set_errhandler(c->world, MPI_ERRORS_RETURN));
    MPI_CHECK(NULL, MPI_Comm_rank(c->world, &c->rank));
    MPI_CHECK(c, MPI_Comm_size(c->world, &c->size));
    /* The local rank is the rank among the processes sharing this node's memory: the same
     * number as OMPI_COMM_WORLD_LOCAL_RANK or SLURM_LOCALID under a launcher that sets them
     * (those can be stale when inherited, e.g. SLURM_LOCALID of a batch step running mpirun). */
    MPI_Comm node;
    MPI_CHECK(c, MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node));
    MPI_CHECK(c, MPI_Comm_rank(node, &c->local_rank));
    MPI_CHECK(c, MPI_Comm_size(node, &c->local_size));
    MPI_CHECK(c, MPI_Comm_free(&node));
    c->max_chunk = COMM_DEFAULT_CHUNK;
    static int registered;
    if (!registered && atexit(exit_without_finalize) == 0) registered = 1;
    live_comm = c;
    return c;
}

static void exit_without_finalize(void)
{
    comm *c = live_comm;
    if (!c) return;
    live_comm = NULL;
    comm_abort(c, 1, "exiting before comm_finalize (after the error above, if any): aborting the job");
}

void comm_finalize(comm *c)
{
    if (!c) return;
    if (live_comm == c) live_comm = NULL;
    /* No rank leaves before every rank got here: a launcher that tears the job down when the
     * first rank exits (mpirun on a non-zero status, e.g. COMM_EXIT_STOPPED) must not kill
     * rank 0 while it still writes the checkpoint. */
    MPI_CHECK(c, MPI_Barrier(c->world));
    MPI_CHECK(c, MPI_Comm_free(&c->world));
    int we = c->we_initialized;
    free(c);
    if (we) MPI_CHECK(NULL, MPI_Finalize());
}

int comm_rank(const comm *c) { return c->rank; }
int comm_size(const comm *c) { return c->size; }
int comm_local_rank(const comm *c) { return c->local_rank; }
int comm_local_size(const comm *c) { return c->local_size; }
double comm_seconds(const comm *c) { return c->seconds; }

void comm_set_max_chunk(comm *c, size_t elements)
{
    c->max_chunk = elements < 1 ? 1 : (elements > INT_MAX ? INT_MAX : elements);
}

static void allreduce_sum(comm *c, void *buf, size_t n, size_t elem, MPI_Datatype type)
{
    double t0 = lawt_now();
    char *p = buf;
    for (size_t off = 0; off < n;) {
        size_t k = n - off < c->max_chunk ? n - off : c->max_chunk;
        MPI_CHECK(c, MPI_Allreduce(MPI_IN_PLACE, p + off * elem, (int)k, type, MPI_SUM, c->world));
        off += k;
    }
    c->seconds += lawt_now() - t0;
}

void comm_allreduce_sum_float(comm *c, float *buf, size_t n)
{
    allreduce_sum(c, buf, n, sizeof *buf, MPI_FLOAT);
}

void comm_allreduce_sum_double(comm *c, double *buf, size_t n)
{
    allreduce_sum(c, buf, n, sizeof *buf, MPI_DOUBLE);
}

void comm_allreduce_sum_long(comm *c, long *buf, size_t n)
{
    allreduce_sum(c, buf, n, sizeof *buf, MPI_LONG);
}

void comm_allreduce_mean_float(comm *c, float *buf, size_t n)
{
    allreduce_sum(c, buf, n, sizeof *buf, MPI_FLOAT);
    if (c->size == 1) return;
    const float inv = 1.0f / (float)c->size;
    /* A multiplication by 1/size is exact for powers of two and within 1 ulp otherwise. */
    for (size_t i = 0; i < n; i++) buf[i] *= inv;
}

void comm_broadcast(comm *c, void *buf, size_t bytes, int root)
{
    double t0 = lawt_now();
    char *p = buf;
    for (size_t off = 0; off < bytes;) {
        size_t k = bytes - off < c->max_chunk ? bytes - off : c->max_chunk;
        MPI_CHECK(c, MPI_Bcast(p + off, (int)k, MPI_BYTE, root, c->world));
        off += k;
    }
    /* Zero bytes still synchronise the root check: an invalid root fails on every rank. */
    if (bytes == 0) MPI_CHECK(c, MPI_Bcast(p, 0, MPI_BYTE, root, c->world));
    c->seconds += lawt_now() - t0;
}

char *comm_broadcast_string(comm *c, const char *s, int root)
{
    uint64_t len = 0;
    if (c->rank == root) len = s ? (uint64_t)strlen(s) : 0;
    comm_broadcast(c, &len, sizeof len, root);
    if (len >= SIZE_MAX) comm_abort(c, 1, "comm_broadcast_string: length %llu too large", (unsigned long long)len);
    char *out = lawt_malloc((size_t)len + 1);
    if (c->rank == root && len) memcpy(out, s, (size_t)len);
    if (len) comm_broadcast(c, out, (size_t)len, root);
    out[len] = '\0';
    return out;
}

void comm_barrier(comm *c)
{
    double t0 = lawt_now();
    MPI_CHECK(c, MPI_Barrier(c->world));
    c->seconds += lawt_now() - t0;
}

int comm_any(comm *c, int flag)
{
    double t0 = lawt_now();
    int v = flag != 0;
    MPI_CHECK(c, MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, c->world));
    c->seconds += lawt_now() - t0;
    return v;
}
