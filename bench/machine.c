#define _DEFAULT_SOURCE /* gethostname */

#include "bench/machine.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void first_line_of(const char *cmd, char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (fgets(buf, (int)cap, p)) buf[strcspn(buf, "\n")] = '\0';
    if (buf[0] == '\0') snprintf(buf, cap, "unknown");
    pclose(p);
}

void cpu_model_name(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(buf, cap, "%s", colon + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
}

double load_average(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

void run_stamp_now(run_stamp *s)
{
    time_t now = time(NULL);
    strftime(s->date, sizeof s->date, "%Y-%m-%d %H:%M", localtime(&now));
    if (gethostname(s->host, sizeof s->host) != 0) snprintf(s->host, sizeof s->host, "unknown");
    s->host[sizeof s->host - 1] = '\0';
#ifdef LAWT_BUILD_COMMIT
    /* A relocatable build (the GPU kit) runs away from its source tree: the commit it was
     * configured from. */
    snprintf(s->commit, sizeof s->commit, "%s", LAWT_BUILD_COMMIT);
    s->dirty = LAWT_BUILD_DIRTY ? " + uncommitted changes" : "";
#else
    first_line_of("git -C " LAWT_SOURCE_DIR " rev-parse --short HEAD 2>/dev/null", s->commit,
                  sizeof s->commit);
    char dirty[64];
    first_line_of("git -C " LAWT_SOURCE_DIR " status --porcelain 2>/dev/null | head -1", dirty,
                  sizeof dirty);
    s->dirty = strcmp(dirty, "unknown") ? " + uncommitted changes" : "";
#endif
}
