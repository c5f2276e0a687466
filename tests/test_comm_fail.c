/* test_comm_fail.c: a rank that fails in one of several ways while the others wait in a
 * collective. Run at np >= 2 by tests/test_comm_fail.sh, which checks that the job ends
 * within seconds, non-zero, with a message naming the rank.
 *
 *   abort     rank 1 calls comm_abort
 *   die       rank 1 calls lawt_die (exit(1) without MPI_Finalize)
 *   die_alone every rank calls lawt_die at once (run as a single process: nothing to abort)
 *   kill      rank 1 SIGKILLs itself
 *   mpierror  every rank broadcasts from an invalid root: MPI_CHECK reports and aborts
 *   stop      no failure: ranks loop until a stop signal (sent to the launcher by the
 *             script) reaches them, agree on it, and exit with COMM_EXIT_STOPPED */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm/comm.h"
#include "common/common.h"

static void nap(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    comm *c = comm_init(&argc, &argv);
    const char *mode = argc > 1 ? argv[1] : "";
    int r = comm_rank(c);
    float x[16] = {0};
    comm_barrier(c);

    if (strcmp(mode, "stop") == 0) {
        comm_install_stop_signals();
        comm_barrier(c);
        if (r == 0) {
            printf("ready\n");
            fflush(stdout);
        }
        for (long step = 0; step < 60000; step++) { /* about 10 minutes at most */
            comm_allreduce_sum_float(c, x, 16);
            if (comm_any(c, comm_stop_requested())) {
                printf("rank %d: stop signal %d (here: %d) agreed at step %ld\n", r,
                       comm_stop_signal(), comm_stop_requested(), step);
                fflush(stdout);
                /* The trainer's pattern: rank 0 writes the checkpoint (here: sleeps for
                 * argv[2] seconds) while the others wait in a barrier, so no rank exits
                 * before the checkpoint is complete (mpirun kills the job as soon as one
                 * rank exits non-zero). */
                if (r == 0) nap(argc > 2 ? atof(argv[2]) : 1.0);
                comm_barrier(c);
                if (r == 0) {
                    printf("rank 0: checkpoint done\n");
                    fflush(stdout);
                }
                comm_finalize(c);
                return COMM_EXIT_STOPPED;
            }
            nap(0.01);
        }
        comm_abort(c, 2, "no stop signal arrived");
    }

    if (strcmp(mode, "mpierror") == 0) comm_broadcast(c, x, sizeof x, comm_size(c) + 3);
    if (strcmp(mode, "die_alone") == 0) lawt_die("injected failure (%s)", mode);

    if (r == 1) {
        nap(0.3); /* let the other ranks block in the all-reduce below */
        if (strcmp(mode, "abort") == 0) comm_abort(c, 3, "injected failure (%s)", mode);
        if (strcmp(mode, "die") == 0) lawt_die("injected failure (%s)", mode);
        if (strcmp(mode, "kill") == 0) raise(SIGKILL);
        comm_abort(c, 4, "unknown mode '%s'", mode);
    }
    /* Blocks forever: rank 1 never joins. */
    for (;;) comm_allreduce_sum_float(c, x, 16);
}
