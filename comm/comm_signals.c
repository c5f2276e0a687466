/* comm_signals.c: the stop signals of comm.h (SIGTERM, SIGUSR1 set a flag that the trainer
 * polls), shared by the MPI (comm.c) and the single-process (comm_single.c) process groups. */
#include "comm/comm.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal_seen;

static void on_stop_signal(int signo)
{
    stop_signal_seen = signo;
}

void comm_install_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* a blocking read or MPI wait is not interrupted with EINTR */
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0)
        comm_abort(NULL, 1, "comm_install_stop_signals: sigaction failed");
}

int comm_stop_requested(void)
{
    return stop_signal_seen != 0;
}

int comm_stop_signal(void)
{
    return (int)stop_signal_seen;
}
