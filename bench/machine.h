/* machine.h: what every benchmark records about where it ran (bench/RESULTS.md rows carry the
 * date, the machine, the commit and the load). */
#ifndef LAWT_BENCH_MACHINE_H
#define LAWT_BENCH_MACHINE_H

#include <stddef.h>

/* Set by CMake (bench/CMakeLists.txt); these defaults serve a build by hand from the root. */
#ifndef LAWT_BENCH_RESULTS
#define LAWT_BENCH_RESULTS "bench/RESULTS.md"
#endif
#ifndef LAWT_SOURCE_DIR
#define LAWT_SOURCE_DIR "."
#endif

/* The first line printed by a shell command (e.g. "git rev-parse --short HEAD"), or "unknown". */
void first_line_of(const char *cmd, char *buf, size_t cap);
/* The "model name" of /proc/cpuinfo, or "unknown". */
void cpu_model_name(char *buf, size_t cap);
/* When, where and from what a benchmark ran, for its RESULTS.md header. */
typedef struct {
    char date[32];       /* "YYYY-MM-DD HH:MM", local time */
    char host[256];
    char commit[64];     /* short hash, or "unknown" */
    const char *dirty;   /* " + uncommitted changes" when the tree has any, else "" */
} run_stamp;
void run_stamp_now(run_stamp *s);

/* The 1-minute load average, or -1: a benchmark on a shared machine says how shared it was. */
double load_average(void);

#endif
