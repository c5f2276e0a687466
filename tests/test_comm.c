/* test_comm.c: the collectives of comm.h at any number of ranks (CTest runs np 1, 2 and 4).
 * Every value is a small integer or a dyadic fraction, so the sums are exact whatever the
 * reduction order, and every rank checks the result it got. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "common/common.h"
#include "tests/test.h"

static void test_identity(comm *c)
{
    int r = comm_rank(c), n = comm_size(c);
    CHECK(n >= 1);
    CHECK(r >= 0 && r < n);
    CHECK(comm_local_size(c) >= 1 && comm_local_size(c) <= n);
    CHECK(comm_local_rank(c) >= 0 && comm_local_rank(c) < comm_local_size(c));
    /* All ranks run on this machine: local rank = rank. */
    CHECK_MSG(comm_local_rank(c) == r, "local rank %d, rank %d", comm_local_rank(c), r);
    /* Every rank appears exactly once. */
    long *seen = lawt_calloc((size_t)n, sizeof *seen);
    seen[r] = 1;
    comm_allreduce_sum_long(c, seen, (size_t)n);
    for (int i = 0; i < n; i++) CHECK_MSG(seen[i] == 1, "rank %d seen %ld times", i, seen[i]);
    free(seen);
}

static void test_allreduce(comm *c, size_t chunk)
{
    int r = comm_rank(c), n = comm_size(c);
    comm_set_max_chunk(c, chunk);
    const size_t len = 100003; /* not a multiple of any chunk size used */
    float *f = lawt_malloc(len * sizeof *f);
    double *d = lawt_malloc(len * sizeof *d);
    long *l = lawt_malloc(len * sizeof *l);
    float *m = lawt_malloc(len * sizeof *m);
    for (size_t i = 0; i < len; i++) {
        f[i] = (float)(r + 1) * 0.25f + (float)(i % 1000);
        d[i] = (double)(r + 1) * 0.125 - (double)i;
        l[i] = (long)(r + 1) * 1000000000L + (long)i;
        m[i] = (float)r * 2.0f + (float)(i % 64);
    }
    comm_allreduce_sum_float(c, f, len);
    comm_allreduce_sum_double(c, d, len);
    comm_allreduce_sum_long(c, l, len);
    comm_allreduce_mean_float(c, m, len);
    const double tri = (double)n * (n + 1) / 2.0; /* sum of (r + 1) */
    int bad_f = 0, bad_d = 0, bad_l = 0, bad_m = 0;
    for (size_t i = 0; i < len; i++) {
        bad_f += f[i] != (float)(tri * 0.25 + (double)n * (double)(i % 1000));
        bad_d += d[i] != tri * 0.125 - (double)n * (double)i;
        bad_l += l[i] != (long)tri * 1000000000L + (long)n * (long)i;
        /* mean of 2r + k over r = 0..n-1 is (n - 1) + k; exact for n = 1, 2, 4 */
        bad_m += m[i] != (float)(n - 1) + (float)(i % 64);
    }
    CHECK_MSG(bad_f == 0, "chunk %zu: %d wrong float sums (f[1] = %g)", chunk, bad_f, (double)f[1]);
    CHECK_MSG(bad_d == 0, "chunk %zu: %d wrong double sums", chunk, bad_d);
    CHECK_MSG(bad_l == 0, "chunk %zu: %d wrong long sums", chunk, bad_l);
    CHECK_MSG(bad_m == 0, "chunk %zu: %d wrong means (m[1] = %g)", chunk, bad_m, (double)m[1]);
    free(f);
    free(d);
    free(l);
    free(m);
    /* Zero-length buffers are fine. */
    comm_allreduce_sum_float(c, NULL, 0);
    comm_set_max_chunk(c, (size_t)1 << 28);
}

static void test_broadcast(comm *c, size_t chunk)
{
    int r = comm_rank(c), n = comm_size(c);
    comm_set_max_chunk(c, chunk);
    for (int root = 0; root < n; root += (n > 1 ? n - 1 : 1)) {
        unsigned char buf[3001];
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = r == root ? (unsigned char)(i * 7 + (size_t)root) : 0xAA;
        comm_broadcast(c, buf, sizeof buf, root);
        int bad = 0;
        for (size_t i = 0; i < sizeof buf; i++) bad += buf[i] != (unsigned char)(i * 7 + (size_t)root);
        CHECK_MSG(bad == 0, "root %d chunk %zu: %d wrong bytes", root, chunk, bad);

        /* A long string, an empty one, and NULL (sent as ""). */
        size_t slen = 200000;
        char *s = lawt_malloc(slen + 1);
        for (size_t i = 0; i < slen; i++) s[i] = (char)('a' + (i + (size_t)root) % 26);
        s[slen] = '\0';
        char *got = comm_broadcast_string(c, r == root ? s : "wrong", root);
        CHECK(strcmp(got, s) == 0);
        free(got);
        got = comm_broadcast_string(c, r == root ? "" : "wrong", root);
        CHECK(got[0] == '\0');
        free(got);
        got = comm_broadcast_string(c, r == root ? NULL : "wrong", root);
        CHECK(got[0] == '\0');
        free(got);
        free(s);
        if (n == 1) break;
    }
    comm_set_max_chunk(c, (size_t)1 << 28);
}

static void test_any(comm *c)
{
    int r = comm_rank(c), n = comm_size(c);
    CHECK(comm_any(c, 0) == 0);
    CHECK(comm_any(c, r == n - 1) == 1);
    CHECK(comm_any(c, r == 0 ? 7 : 0) == 1);
    CHECK(comm_any(c, -1) == 1);
    comm_barrier(c);
}

/* The flag the trainer polls: a signal on one rank stops every rank at the same step. */
static void test_stop_signal(comm *c)
{
    int r = comm_rank(c), n = comm_size(c);
    CHECK(comm_stop_requested() == 0);
    CHECK(comm_stop_signal() == 0);
    comm_install_stop_signals();
    long stopped_at = -1;
    for (long step = 0; step < 100; step++) {
        if (step == 5 && r == n - 1) raise(SIGUSR1);
        if (step == 8 && r == 0) raise(SIGTERM);
        if (comm_any(c, comm_stop_requested())) {
            stopped_at = step;
            break;
        }
    }
    CHECK_MSG(stopped_at == 5, "stopped at step %ld", stopped_at);
    CHECK(comm_stop_requested() == (r == n - 1));
    CHECK(comm_stop_signal() == (r == n - 1 ? SIGUSR1 : 0));
    long steps[2] = {stopped_at, -stopped_at};
    comm_allreduce_sum_long(c, steps, 2);
    CHECK(steps[0] == 5L * n && steps[1] == -5L * n);
    if (r == 0) {
        raise(SIGTERM); /* handled: the process goes on */
        CHECK(comm_stop_signal() == SIGTERM);
    }
}

int main(int argc, char **argv)
{
    comm *c = comm_init(&argc, &argv);
    test_identity(c);
    test_allreduce(c, (size_t)1 << 28);
    test_allreduce(c, 4096); /* exercises the splitting into several MPI calls */
    test_broadcast(c, (size_t)1 << 28);
    test_broadcast(c, 1000);
    test_any(c);
    double t = comm_seconds(c);
#ifdef LAWT_COMM_SINGLE
    CHECK(t == 0.0); /* one process: nothing to wait for */
#else
    CHECK(t > 0.0 && t < 60.0);
#endif
    test_stop_signal(c);
    CHECK(comm_seconds(c) >= t);
    char name[64];
    snprintf(name, sizeof name, "test_comm[rank %d of %d]", comm_rank(c), comm_size(c));
    comm_finalize(c);
    return test_report(name);
}
