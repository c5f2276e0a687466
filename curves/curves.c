/* curves.c: learning curves from a metrics history (curves.h).
 *
 * The history's lines are the trainer's own JSON (train.c writes them): flat objects whose
 * accuracies are one-level objects keyed by tolerance, e.g.
 *   {"type":"eval","step":250,"examples":16000,...,"acc":{"5":99.1,"1":97.2},"acc_l2":{...}}
 * so a small scanner for exactly that shape is enough; anything else on a line is skipped. */
#include "curves/curves.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"

static const char *const ACC_KEYS[LAWT_NORM_COUNT] = {"acc", "acc_l2", "acc_linf"};

static int fail(char *err, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errcap, const char *fmt, ...)
{
    if (err && errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- the scanner: one line [line, end) ---- */

/* The text after "key": in the line, or NULL. */
static const char *value_of(const char *line, const char *end, const char *key)
{
    char pat[64];
    int n = snprintf(pat, sizeof pat, "\"%s\":", key);
    for (const char *p = line; p + n <= end; p++)
        if (memcmp(p, pat, (size_t)n) == 0) return p + n;
    return NULL;
}

static int number_of(const char *line, const char *end, const char *key, double *x)
{
    const char *v = value_of(line, end, key);
    if (!v) return -1;
    char *stop;
    *x = strtod(v, &stop);
    return stop == v || stop > end ? -1 : 0;
}

static int long_of(const char *line, const char *end, const char *key, long *x)
{
    double d;
    if (number_of(line, end, key, &d)) return -1;
    *x = (long)d;
    return 0;
}

/* 1 when the line's "type" is type. */
static int is_type(const char *line, const char *end, const char *type)
{
    const char *v = value_of(line, end, "type");
    size_t n = strlen(type);
    return v && v + n + 2 <= end && v[0] == '"' && strncmp(v + 1, type, n) == 0 && v[n + 1] == '"';
}

/* Calls back for each "name":number pair of the object after "key":; returns the pair count,
 * or -1 when the object is malformed. */
static int object_pairs(const char *line, const char *end, const char *key, run_curves *c,
                        curve_eval_point *pt, int norm)
{
    const char *p = value_of(line, end, key);
    if (!p) return 0;
    if (*p != '{') return -1;
    p++;
    int pairs = 0;
    while (p < end && *p != '}') {
        if (*p == ',') p++;
        if (*p != '"') return -1;
        const char *name = ++p;
        while (p < end && *p != '"') p++;
        if (p >= end || p[1] != ':') return -1;
        size_t len = (size_t)(p - name);
        p += 2;
        char *stop;
        double x = strtod(p, &stop);
        if (stop == p) return -1;
        p = stop;
        if (len >= sizeof c->tol[0]) return -1;
        int t = 0;
        while (t < c->ntol && !(strlen(c->tol[t]) == len && memcmp(c->tol[t], name, len) == 0)) t++;
        if (t == c->ntol) {
            if (c->ntol == EVAL_MAX_TOLERANCES) continue;
            memcpy(c->tol[t], name, len);
            c->tol[t][len] = '\0';
            c->ntol++;
        }
        pt->acc[norm][t] = x;
        pairs++;
    }
    return p < end ? pairs : -1;
}

/* The object after "set": inside the line's "ood" object, as [*begin, *end) (braces
 * included); 0, or -1 when the line has none. Set names are law names (eval.ood), which no
 * key inside a set's object spells. */
static int ood_object(const char *line, const char *end, const char *set, const char **obegin,
                      const char **oend)
{
    const char *ood = value_of(line, end, "ood");
    if (!ood || *ood != '{') return -1;
    const char *p = value_of(ood, end, set);
    if (!p || *p != '{') return -1;
    int depth = 0;
    for (const char *q = p; q < end; q++) {
        if (*q == '{') depth++;
        else if (*q == '}' && --depth == 0) {
            *obegin = p;
            *oend = q + 1;
            return 0;
        }
    }
    return -1;
}

static int parse_history(const char *jsonl, const char *set, run_curves *c, char *err, size_t errcap)
{
    memset(c, 0, sizeof *c);
    int cap_train = 0, cap_eval = 0, lineno = 0;
    for (const char *line = jsonl ? jsonl : ""; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        lineno++;
        if (is_type(line, end, "train")) {
            if (c->ntrain == cap_train) {
                cap_train = cap_train ? 2 * cap_train : 256;
                curve_train_point *grown = realloc(c->train, (size_t)cap_train * sizeof *grown);
                if (!grown) lawt_die("out of memory reading a metrics history");
                c->train = grown;
            }
            curve_train_point *pt = &c->train[c->ntrain];
            memset(pt, 0, sizeof *pt);
            if (long_of(line, end, "step", &pt->step) || long_of(line, end, "examples", &pt->examples) ||
                number_of(line, end, "loss", &pt->loss)) {
                curves_free(c);
                return fail(err, errcap, "line %d: a train record without step, examples or loss", lineno);
            }
            number_of(line, end, "lr", &pt->lr);
            number_of(line, end, "time", &pt->time);
            c->ntrain++;
        } else if (is_type(line, end, "eval")) {
            /* The accuracies are the first of each name: the test set's, or set's. */
            const char *acc_begin = line, *acc_end = end;
            if (set && ood_object(line, end, set, &acc_begin, &acc_end)) {
                line = *end ? end + 1 : end;
                continue;
            }
            if (c->neval == cap_eval) {
                cap_eval = cap_eval ? 2 * cap_eval : 64;
                curve_eval_point *grown = realloc(c->eval, (size_t)cap_eval * sizeof *grown);
                if (!grown) lawt_die("out of memory reading a metrics history");
                c->eval = grown;
            }
            curve_eval_point *pt = &c->eval[c->neval];
            memset(pt, 0, sizeof *pt);
            for (int n = 0; n < LAWT_NORM_COUNT; n++)
                for (int t = 0; t < EVAL_MAX_TOLERANCES; t++) pt->acc[n][t] = NAN;
            if (long_of(line, end, "step", &pt->step) || long_of(line, end, "examples", &pt->examples)) {
                curves_free(c);
                return fail(err, errcap, "line %d: an eval record without step or examples", lineno);
            }
            long_of(acc_begin, acc_end, "size", &pt->size);
            number_of(line, end, "time", &pt->time);
            number_of(acc_begin, acc_end, "well_formed", &pt->well_formed);
            for (int n = 0; n < LAWT_NORM_COUNT; n++)
                if (object_pairs(acc_begin, acc_end, ACC_KEYS[n], c, pt, n) < 0) {
                    curves_free(c);
                    return fail(err, errcap, "line %d: malformed \"%s\" object", lineno, ACC_KEYS[n]);
                }
            c->neval++;
        }
        line = *end ? end + 1 : end;
    }
    return 0;
}

int curves_parse(const char *jsonl, run_curves *c, char *err, size_t errcap)
{
    return parse_history(jsonl, NULL, c, err, errcap);
}

int curves_parse_ood(const char *jsonl, const char *set, run_curves *c, char *err, size_t errcap)
{
    return parse_history(jsonl, set, c, err, errcap);
}

static int read_history(const char *path, const char *set, run_curves *c, char *err, size_t errcap)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errcap, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *text = lawt_malloc(cap);
    size_t got;
    while ((got = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            cap *= 2;
            char *grown = realloc(text, cap);
            if (!grown) lawt_die("out of memory reading %s", path);
            text = grown;
        }
    }
    int bad = ferror(f);
    fclose(f);
    text[len] = '\0';
    if (bad) {
        free(text);
        return fail(err, errcap, "%s: read error", path);
    }
    char inner[512];
    int rc = parse_history(text, set, c, inner, sizeof inner);
    free(text);
    if (rc) return fail(err, errcap, "%s: %s", path, inner);
    return 0;
}

int curves_read_file(const char *path, run_curves *c, char *err, size_t errcap)
{
    return read_history(path, NULL, c, err, errcap);
}

int curves_read_file_ood(const char *path, const char *set, run_curves *c, char *err, size_t errcap)
{
    return read_history(path, set, c, err, errcap);
}

void curves_free(run_curves *c)
{
    free(c->train);
    free(c->eval);
    c->train = NULL;
    c->eval = NULL;
    c->ntrain = c->neval = 0;
}

/* ---- the summary table ---- */

/* The accuracies whose sample size the paper reports (Tables 7, 16, 17, 19). */
static const double REACH_PERCENT[] = {95.0, 99.0};
#define NREACH ((int)(sizeof REACH_PERCENT / sizeof REACH_PERCENT[0]))

long curves_examples_to_reach(const run_curves *c, lawt_norm norm, int tol_index, double percent)
{
    if (norm < 0 || norm >= LAWT_NORM_COUNT || tol_index < 0 || tol_index >= c->ntol) return -1;
    for (int e = 0; e < c->neval; e++)
        if (c->eval[e].acc[norm][tol_index] >= percent) return c->eval[e].examples; /* NaN: no */
    return -1;
}

void curves_print_sample_size(FILE *f, const run_curves *c)
{
    fprintf(f, "| tolerance |");
    for (int r = 0; r < NREACH; r++) fprintf(f, " examples to %g%% (L1) |", REACH_PERCENT[r]);
    fprintf(f, "\n|---|");
    for (int r = 0; r < NREACH; r++) fprintf(f, "---|");
    fputc('\n', f);
    for (int t = 0; t < c->ntol; t++) {
        fprintf(f, "| %s%% |", c->tol[t]);
        for (int r = 0; r < NREACH; r++) {
            long x = curves_examples_to_reach(c, NORM_L1, t, REACH_PERCENT[r]);
            if (x < 0) fprintf(f, " not reached |");
            else fprintf(f, " %ld |", x);
        }
        fputc('\n', f);
    }
}

void curves_print_summary(FILE *f, const char *prefix, const run_curves *c, long examples,
                          double wall_seconds)
{
    fprintf(f, "%ssummary  %ld examples seen | wall time %.1f s | %.1f examples/s\n", prefix,
            examples, wall_seconds, wall_seconds > 0 ? (double)examples / wall_seconds : 0.0);
    if (c->neval == 0) {
        fprintf(f, "%s         no evaluation in this run\n", prefix);
        return;
    }
    const curve_eval_point *last = &c->eval[c->neval - 1];
    fprintf(f, "%s         accuracy (%%) over %d evaluations: best (examples seen then) and final; "
            "examples seen when L1 first reached 95%% and 99%%\n", prefix, c->neval);
    fprintf(f, "%s         %-9s", prefix, "tolerance");
    for (int n = 0; n < LAWT_NORM_COUNT; n++) {
        char head[32];
        snprintf(head, sizeof head, "%s best", norm_name((lawt_norm)n));
        fprintf(f, " | %-19s %6s", head, "final");
    }
    for (int r = 0; r < NREACH; r++) {
        char head[32];
        snprintf(head, sizeof head, "L1 to %g%%", REACH_PERCENT[r]);
        fprintf(f, " | %12s", head);
    }
    fputc('\n', f);
    for (int t = 0; t < c->ntol; t++) {
        char tol[24];
        snprintf(tol, sizeof tol, "%s%%", c->tol[t]);
        fprintf(f, "%s         %-9s", prefix, tol);
        for (int n = 0; n < LAWT_NORM_COUNT; n++) {
            int best = -1;
            for (int e = 0; e < c->neval; e++)
                if (!isnan(c->eval[e].acc[n][t]) && (best < 0 || c->eval[e].acc[n][t] > c->eval[best].acc[n][t]))
                    best = e;
            if (best < 0) {
                fprintf(f, " | %-19s %6s", "-", "-");
                continue;
            }
            char at[48];
            snprintf(at, sizeof at, "%.2f (%ld)", c->eval[best].acc[n][t], c->eval[best].examples);
            fprintf(f, " | %-19s %6.2f", at, last->acc[n][t]);
        }
        for (int r = 0; r < NREACH; r++) {
            long x = curves_examples_to_reach(c, NORM_L1, t, REACH_PERCENT[r]);
            if (x < 0) fprintf(f, " | %12s", "-");
            else fprintf(f, " | %12ld", x);
        }
        fputc('\n', f);
    }
}

/* ---- plots ---- */

int curves_gnuplot_available(void)
{
    const char *path = getenv("PATH");
    if (!path) return 0;
    for (const char *p = path; *p;) {
        size_t k = strcspn(p, ":");
        char exe[4096];
        if (k > 0 && k + sizeof "/gnuplot" < sizeof exe) {
            memcpy(exe, p, k);
            memcpy(exe + k, "/gnuplot", sizeof "/gnuplot");
            struct stat st;
            if (stat(exe, &st) == 0 && S_ISREG(st.st_mode) && access(exe, X_OK) == 0) return 1;
        }
        p += k;
        if (*p == ':') p++;
    }
    return 0;
}

/* A gnuplot single-quoted string: a quote is doubled, nothing else is special. */
static void put_quoted(FILE *g, const char *s)
{
    fputc('\'', g);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', g);
        fputc(*s, g);
    }
    fputc('\'', g);
}

static const char *const NORM_DASH[LAWT_NORM_COUNT] = {"1", "2", "3"}; /* solid, dashed, dotted */

static void write_script(FILE *g, const run_curves *runs, const char *const *names, int nruns,
                         const curves_plot_options *o)
{
    /* The data as inline blocks: no temporary files to clean up. */
    for (int r = 0; r < nruns; r++) {
        fprintf(g, "$train%d << EOD\n", r);
        for (int i = 0; i < runs[r].ntrain; i++)
            fprintf(g, "%ld %.9g\n", runs[r].train[i].examples, runs[r].train[i].loss);
        fprintf(g, "EOD\n$eval%d << EOD\n", r);
        for (int i = 0; i < runs[r].neval; i++) {
            fprintf(g, "%ld", runs[r].eval[i].examples);
            for (int n = 0; n < LAWT_NORM_COUNT; n++)
                for (int t = 0; t < runs[r].ntol; t++)
                    if (isnan(runs[r].eval[i].acc[n][t])) fprintf(g, " NaN");
                    else fprintf(g, " %.4g", runs[r].eval[i].acc[n][t]);
            fputc('\n', g);
        }
        fprintf(g, "EOD\n");
    }
    fprintf(g, "set terminal %s size %d,%d noenhanced font ',10'\nset output ", o->svg ? "svg" : "pngcairo",
            o->width, o->height);
    put_quoted(g, o->output);
    fprintf(g, "\nset datafile missing 'NaN'\nset multiplot layout 1,2\nset grid\n"
               "set xlabel 'examples seen'\nset format x '%%.1s%%c'\n\n");

    fprintf(g, "set title 'training loss'\nset ylabel 'cross-entropy per token'\nset logscale y\n"
               "set key top right\n");
    int lines = 0;
    for (int r = 0; r < nruns; r++) lines += runs[r].ntrain > 0;
    if (lines == 0) {
        fprintf(g, "unset logscale y\nset label 1 'no training records' at graph 0.5,0.5 center\n"
                   "plot [0:1] NaN notitle\nunset label 1\n");
    } else {
        fprintf(g, "plot ");
        for (int r = 0, k = 0; r < nruns; r++) {
            if (runs[r].ntrain == 0) continue;
            fprintf(g, "%s$train%d using 1:2 with lines lw 1.5 lc %d title ", k++ ? ", " : "", r, r + 1);
            put_quoted(g, names[r]);
        }
        fputc('\n', g);
    }

    fprintf(g, "unset logscale y\nset title 'accuracy'\nset ylabel 'accuracy (%%)'\nset yrange [0:100]\n"
               "set key bottom right\n");
    lines = 0;
    for (int r = 0; r < nruns; r++) lines += runs[r].neval > 0 && runs[r].ntol > 0;
    if (lines == 0) {
        fprintf(g, "set label 1 'no evaluations' at graph 0.5,0.5 center\nplot [0:1] NaN notitle\n");
    } else {
        fprintf(g, "plot ");
        int k = 0;
        for (int r = 0; r < nruns; r++)
            for (int n = 0; n < LAWT_NORM_COUNT; n++) {
                if (!o->norms[n]) continue;
                for (int t = 0; t < runs[r].ntol; t++) {
                    int column = 2 + n * runs[r].ntol + t;
                    /* One colour a run (a tolerance when there is one run), one point type a
                     * tolerance, one dash type a norm. */
                    fprintf(g, "%s$eval%d using 1:%d with linespoints lw 1.5 lc %d pt %d dt %s title ",
                            k++ ? ", " : "", r, column, nruns > 1 ? r + 1 : t + 1, t + 1, NORM_DASH[n]);
                    char title[600];
                    snprintf(title, sizeof title, "%s%s%s %s%%", nruns > 1 ? names[r] : "",
                             nruns > 1 ? " " : "", norm_name((lawt_norm)n), runs[r].tol[t]);
                    put_quoted(g, title);
                }
            }
        fputc('\n', g);
    }
    fprintf(g, "unset multiplot\nset output\n");
}

int curves_plot(const run_curves *runs, const char *const *names, int nruns,
                const curves_plot_options *o, char *err, size_t errcap)
{
    if (!curves_gnuplot_available())
        return fail(err, errcap, "gnuplot not found on PATH: install the Debian package %s "
                    "(apt-get install %s, or scripts/install-deps.sh)", CURVES_GNUPLOT_PACKAGE,
                    CURVES_GNUPLOT_PACKAGE);
    /* The script is a file, not a pipe: gnuplot then stops at the first error (from a pipe it
     * goes on, and a failed "set output" sends the image to its stdout). Its messages go to a
     * second file, shown only when it fails: it warns about harmless things (a curve of one
     * point has an "empty x range"). */
    char dir[] = "/tmp/lawt_plot_XXXXXX";
    if (!mkdtemp(dir)) return fail(err, errcap, "cannot create a temporary directory in /tmp: %s", strerror(errno));
    char script[sizeof dir + 16], messages[sizeof dir + 16], command[3 * sizeof dir + 64];
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    snprintf(messages, sizeof messages, "%s/messages", dir);
    FILE *g = fopen(script, "w");
    if (!g) {
        rmdir(dir);
        return fail(err, errcap, "cannot write %s: %s", script, strerror(errno));
    }
    write_script(g, runs, names, nruns, o);
    int written = fclose(g) == 0;
    int status = -1;
    if (written) {
        snprintf(command, sizeof command, "gnuplot %s > %s 2>&1", script, messages);
        fflush(stdout);
        status = system(command);
    }
    int ok = written && status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        FILE *m = fopen(messages, "r");
        char line[512];
        while (m && fgets(line, sizeof line, m)) fprintf(stderr, "gnuplot: %s", line);
        if (m) fclose(m);
    }
    unlink(script);
    unlink(messages);
    rmdir(dir);
    if (!written) return fail(err, errcap, "cannot write %s (disk full?)", script);
    if (!ok)
        return fail(err, errcap, "gnuplot failed (status %d) drawing %s: its messages are above",
                    status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1, o->output);
    struct stat st;
    if (stat(o->output, &st) != 0 || st.st_size == 0)
        return fail(err, errcap, "gnuplot wrote no %s", o->output);
    return 0;
}

/* ---- the end of a training run ---- */

static void both(FILE *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void both(FILE *log, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (log) {
        va_start(ap, fmt);
        vfprintf(log, fmt, ap);
        va_end(ap);
    }
}

void curves_end_of_run(const char *metrics_jsonl, long examples, double wall_seconds,
                       const char *run_dir, FILE *log)
{
    run_curves c;
    char err[512];
    if (curves_parse(metrics_jsonl, &c, err, sizeof err)) {
        both(log, "warning: no summary: the metrics history: %s\n", err);
        return;
    }
    curves_print_summary(stdout, "", &c, examples, wall_seconds);
    if (log) curves_print_summary(log, "", &c, examples, wall_seconds);
    if (run_dir && run_dir[0] && curves_gnuplot_available()) {
        size_t n = strlen(run_dir) + sizeof "/curves.png";
        char *path = lawt_malloc(n);
        snprintf(path, n, "%s/curves.png", run_dir);
        curves_plot_options o = {path, 0, 1200, 500, {1, 0, 0}};
        const char *name = run_dir;
        fflush(stdout);
        if (curves_plot(&c, &name, 1, &o, err, sizeof err)) both(log, "warning: %s\n", err);
        else both(log, "plot     %s\n", path);
        free(path);
    }
    fflush(stdout);
    if (log) fflush(log);
    curves_free(&c);
}
