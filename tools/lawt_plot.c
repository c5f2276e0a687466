/* lawt_plot: learning curves of one or more runs, overlaid, as the paper's Figures 1-2: loss
 * and accuracy at each tolerance against examples seen. The drawing is gnuplot's (curves.h).
 * --sample-size prints instead the examples each run needed to reach 95% and 99% (Tables 7,
 * 16, 17, 19). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "checkpoint/checkpoint.h"
#include "common/common.h"
#include "curves/curves.h"

#define MAX_RUNS 32

static const char USAGE[] =
    "usage: lawt_plot RUN... [-o FILE] [--svg] [--norms L1,L2,Linf] [--size WxH]\n"
    "       lawt_plot RUN... --sample-size\n"
    "\n"
    "Draws the training loss (left) and the accuracy at every evaluation tolerance (right)\n"
    "against examples seen, the runs overlaid and named, like the paper's Figures 1-2.\n"
    "A RUN is a run directory (its metrics.jsonl), a metrics.jsonl file, or a checkpoint (.h5:\n"
    "the history it stores). Needs gnuplot (Debian package " CURVES_GNUPLOT_PACKAGE ").\n"
    "\n"
    "  -o FILE           the image (default curves.png, or curves.svg with --svg)\n"
    "  --svg             SVG instead of PNG\n"
    "  --norms LIST      the norms whose accuracies are drawn, of L1, L2, Linf (default L1)\n"
    "  --size WxH        the image size in pixels (default 1200x500)\n"
    "  --sample-size     draw nothing: print for each run, per tolerance, the examples seen\n"
    "                    when its L1 accuracy first reached 95% and 99% (the paper's sample\n"
    "                    size, Tables 7, 16, 17, 19), as a markdown table\n";

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A run's history from a directory, a JSONL file or a checkpoint. */
static int load_run(const char *arg, run_curves *c, char *err, size_t errcap)
{
    struct stat st;
    if (stat(arg, &st) != 0) {
        snprintf(err, errcap, "%s: no such run directory, metrics file or checkpoint", arg);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        size_t n = strlen(arg) + sizeof "/metrics.jsonl";
        char *path = lawt_malloc(n);
        snprintf(path, n, "%s/metrics.jsonl", arg);
        int rc = curves_read_file(path, c, err, errcap);
        free(path);
        return rc;
    }
    if (ends_with(arg, ".h5")) {
        checkpoint_meta meta;
        if (checkpoint_read_meta(arg, &meta, err, errcap)) return -1;
        char inner[400];
        int rc = curves_parse(meta.metrics_jsonl, c, inner, sizeof inner);
        if (rc) snprintf(err, errcap, "%s: its metrics history: %s", arg, inner);
        checkpoint_meta_free(&meta);
        return rc;
    }
    return curves_read_file(arg, c, err, errcap);
}

/* "L1,Linf" into the norms flags; returns -1 naming the bad word. */
static int parse_norms(const char *list, int norms[LAWT_NORM_COUNT], char *err, size_t errcap)
{
    for (int n = 0; n < LAWT_NORM_COUNT; n++) norms[n] = 0;
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        int found = 0;
        for (int n = 0; n < LAWT_NORM_COUNT; n++) {
            const char *name = norm_name((lawt_norm)n);
            if (strlen(name) == k && strncasecmp(p, name, k) == 0) norms[n] = found = 1;
        }
        if (!found) {
            snprintf(err, errcap, "--norms: unknown norm '%.*s'; norms: L1, L2, Linf", (int)k, p);
            return -1;
        }
        p += k;
        if (*p == ',') p++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *runs_arg[MAX_RUNS], *output = NULL;
    int nruns = 0, sample_size = 0;
    curves_plot_options o = {NULL, 0, 1200, 500, {1, 0, 0}};
    char err[1024];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        } else if (strcmp(a, "--sample-size") == 0) {
            sample_size = 1;
        } else if (strcmp(a, "--svg") == 0) {
            o.svg = 1;
        } else if (strcmp(a, "-o") == 0 && has_value) {
            output = argv[++i];
        } else if (strcmp(a, "--norms") == 0 && has_value) {
            if (parse_norms(argv[++i], o.norms, err, sizeof err)) {
                fprintf(stderr, "lawt_plot: %s\n", err);
                return 2;
            }
        } else if (strcmp(a, "--size") == 0 && has_value) {
            char tail;
            if (sscanf(argv[++i], "%dx%d%c", &o.width, &o.height, &tail) != 2 || o.width < 100 ||
                o.height < 100 || o.width > 20000 || o.height > 20000) {
                fprintf(stderr, "lawt_plot: --size %s: expected WxH, 100 to 20000 pixels each\n", argv[i]);
                return 2;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "lawt_plot: %s: %s (see --help)\n",
                    has_value ? "unknown option" : "unknown option or missing value", a);
            return 2;
        } else if (nruns == MAX_RUNS) {
            fprintf(stderr, "lawt_plot: more than %d runs\n", MAX_RUNS);
            return 2;
        } else {
            runs_arg[nruns++] = a;
        }
    }
    if (nruns == 0) {
        fprintf(stderr, "lawt_plot: no run given (see --help)\n");
        return 2;
    }
    o.output = output ? output : o.svg ? "curves.svg" : "curves.png";
    run_curves runs[MAX_RUNS];
    int status = 0, loaded = 0;
    for (; loaded < nruns; loaded++)
        if (load_run(runs_arg[loaded], &runs[loaded], err, sizeof err)) {
            fprintf(stderr, "lawt_plot: %s\n", err);
            status = 1;
            break;
        }
    if (status == 0 && sample_size) {
        for (int i = 0; i < nruns; i++) {
            printf("%s%s\n\n", i ? "\n" : "", runs_arg[i]);
            curves_print_sample_size(stdout, &runs[i]);
        }
    } else if (status == 0) {
        if (curves_plot(runs, runs_arg, nruns, &o, err, sizeof err)) {
            fprintf(stderr, "lawt_plot: %s\n", err);
            status = 1;
        } else {
            printf("lawt_plot: wrote %s (%d run%s)\n", o.output, nruns, nruns > 1 ? "s" : "");
        }
    }
    for (int i = 0; i < loaded; i++) curves_free(&runs[i]);
    return status;
}
