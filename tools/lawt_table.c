/* lawt_table: one of the paper's tables as a grid of runs (jobs/tables/tableNN.ini, the format in
 * jobs/tables/README.md): the commands that make it (--plan), running them here one after the
 * other (--run) or as a Slurm job array (--slurm), and the table itself, in the paper's layout
 * with the published number beside each measured one, read from the run directories.
 *
 * A cell is a row crossed with a column. The keys of the table, its row and its column add up
 * to the cell's run (a job file and --set overrides), an optional evaluation of that run's
 * best.h5 on other data (lawt_dist --evaluate, the paper's out-of-distribution tables) and
 * the measurement read from the metrics.jsonl it ends in. Runs are shared by the cells that
 * name the same one: a run's name is the ids of the row and column that give it keys. The
 * table never invents a number: a run that is missing, still training or stopped shows as
 * such. */
/* realpath */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "common/common.h"
#include "curves/curves.h"

#define MAX_ROWS 64
#define MAX_COLS 32
#define MAX_AUX 32           /* [run ID] sections: Table 22 has 24 */
#define MAX_RUNS (MAX_ROWS * MAX_COLS + MAX_AUX)
#define MAX_SETS 32          /* set / test / smoke lines of one section */
#define VALUE_MAX 200        /* lawt_dist's own line limit is 198 characters */
#define ID_MAX 40
#define EXIT_STOPPED 75      /* lawt_dist's status after a stop signal */

static const char USAGE[] =
    "usage: lawt_table GRID --runs DIR [--smoke]                     the markdown table\n"
    "       lawt_table GRID --runs DIR [--smoke] --plan              the commands of the grid\n"
    "       lawt_table GRID --runs DIR [--smoke] --run [--only K] [--launcher CMD]\n"
    "       lawt_table GRID --runs DIR [--smoke] --slurm             a Slurm job array script\n"
    "       lawt_table GRID [--smoke] --check                        every run's configuration\n"
    "       lawt_table --help | --help-format\n"
    "\n"
    "A GRID (jobs/tables/tableNN.ini; --help-format, or jobs/tables/README.md) lays out one of\n"
    "the paper's tables: rows and columns, each cell a run (a job file and overrides), maybe an\n"
    "evaluation of it on other data, a measurement, and the published number.\n"
    "\n"
    "  --runs DIR       where the runs go: DIR/<run> for each run, DIR/<run>.test-<test> for\n"
    "                   each evaluation of a run on other data\n"
    "  --smoke          adds the grid's smoke overrides last to every run (tiny models, a few\n"
    "                   steps): the whole grid end to end in seconds\n"
    "  --plan           prints the lawt_dist commands --run would run now, one a line\n"
    "  --run            runs them here, one after the other: a complete run is skipped, one\n"
    "                   with a checkpoint resumed, a run that another lawt_dist holds left\n"
    "                   alone; each run's evaluations follow it. Then prints the table\n"
    "  --only K         with --run: only task K of the job array (a run and the runs that\n"
    "                   start from its weights, in order; --plan numbers them)\n"
    "  --launcher CMD   with --run: the command that starts lawt_dist, split at blanks\n"
    "                   (e.g. \"mpirun -np 4\" or \"srun --mpi=pmix\"); default: none\n"
    "  --slurm          prints a Slurm script: a job array of one task per run group, each\n"
    "                   task `lawt_table --run --only $SLURM_ARRAY_TASK_ID`, requeued when the\n"
    "                   time limit comes (sbatch it from this directory)\n"
    "  --check          runs lawt_dist --memory-plan on every run's and test's configuration,\n"
    "                   training nothing: a grid whose keys lawt_dist refuses fails here (the\n"
    "                   grid planned for a GPU, --smoke for this machine's CPU), and so\n"
    "                   does a cell whose ood set its run's eval.ood does not list\n"
    "  --dist PATH      the lawt_dist program (default: the build tree's or installed one\n"
    "                   beside lawt_table, else lawt_dist on PATH)\n"
    "\n"
    "Exit status: 0 done; 1 a run or an evaluation failed (the others still ran), or --check\n"
    "found a bad configuration; 2 bad command line or grid file; 75 stopped by a signal (the\n"
    "run in progress checkpointed: --run again resumes it).\n";

/* ---- the grid file's keys: one table, which the parser and --help-format both read ---- */

enum { IN_TABLE = 1, IN_ROW = 2, IN_COLUMN = 4, IN_RUN = 8 };
#define IN_AXIS (IN_ROW | IN_COLUMN)

#define GRID_KEYS(X)                                                                        \
    X(KEY_TITLE, "title", IN_TABLE, 0, "the table's heading (required)")                   \
    X(KEY_NOTE, "note", IN_TABLE, 1, "a line printed under the table (repeatable)")          \
    X(KEY_CORNER, "corner", IN_TABLE, 0, "the text of the top-left header cell")             \
    X(KEY_SMOKE, "smoke", IN_TABLE, 1,                                                      \
      "KEY=VALUE added last to every run with --smoke (repeatable)")                         \
    X(KEY_CONFIG, "config", IN_TABLE | IN_AXIS | IN_RUN, 0,                                 \
      "the job file of the run, relative to the grid file's folder")                         \
    X(KEY_SET, "set", IN_TABLE | IN_AXIS | IN_RUN, 1,                                       \
      "KEY=VALUE: a lawt_dist --set of the run (repeatable; the row's after the table's)")  \
    X(KEY_INIT_FROM, "init_from", IN_AXIS | IN_RUN, 0,                                      \
      "a run of this grid (its name) whose best.h5 starts this run (run.init_from)")        \
    X(KEY_TEST, "test", IN_TABLE | IN_AXIS, 1,                                              \
      "KEY=VALUE: evaluate the run's best.h5 with this --set (lawt_dist --evaluate; "       \
      "repeatable); without test lines the cell reads the run's own evaluations")           \
    X(KEY_OOD, "ood", IN_TABLE | IN_AXIS, 0,                                                \
      "LAW: read the run's own evaluations of the out-of-distribution set LAW (eval.ood: the " \
      "\"ood\" object of its eval records, LAW as they spell it, e.g. laplace or wigner@0.3) " \
      "instead of its test set's; no test lines with it")                                   \
    X(KEY_MEASURE, "measure", IN_TABLE | IN_AXIS, 0,                                        \
      "final | best | examples_to | epochs_to (default final)")                              \
    X(KEY_NORM, "norm", IN_TABLE | IN_AXIS, 0, "L1 | L2 | Linf (default L1)")                \
    X(KEY_TOLERANCE, "tolerance", IN_TABLE | IN_AXIS, 0,                                    \
      "the tolerance in percent, one of the run's eval.tolerances (default 5)")             \
    X(KEY_REACH, "reach", IN_TABLE | IN_AXIS, 0,                                            \
      "the accuracy in percent that examples_to and epochs_to wait for (default 95)")        \
    X(KEY_UNTIL, "until", IN_TABLE | IN_AXIS, 0,                                            \
      "final and best read only the evaluations within this many epochs (default: all)")    \
    X(KEY_LABEL, "label", IN_AXIS, 0, "the header text of the row or column (default: its id)") \
    X(KEY_RUN, "run", IN_AXIS, 0,                                                           \
      "the part of the run name this row or column gives (default: its id): rows (or "     \
      "columns) with the same run name share their runs, and must give the same keys")     \
    X(KEY_OMIT, "omit", IN_ROW, 0,                                                          \
      "column ids, blank-separated, whose cells in this row are empty: no run, no number")  \
    X(KEY_RUNS, "runs", IN_ROW, 0,                                                          \
      "the run of each cell of this row, one per column in order, blank-separated: [run ID] " \
      "sections of this grid, - for an empty cell (a row whose cells are runs of different " \
      "job files, as Table 7's are Table 19's); the row and its columns give no run keys")  \
    X(KEY_PUBLISHED, "published", IN_ROW, 0,                                                \
      "the paper's numbers, one per column in order, blank-separated; - where it has none")

#define KEY_ENUM(id, name, where, repeat, help) id,
#define KEY_ROW(id, name, where, repeat, help) {name, where, repeat, help},
typedef enum { GRID_KEYS(KEY_ENUM) KEY_COUNT } grid_key;
static const struct {
    const char *name;
    int where, repeatable;
    const char *help;
} KEYS[] = {GRID_KEYS(KEY_ROW)};

/* What a cell reads: one table, as every enumeration. */
#define MEASURES(X)                                                                         \
    X(MEASURE_FINAL, "final", "accuracy (%) at the last evaluation")                        \
    X(MEASURE_BEST, "best", "highest accuracy (%) over the evaluations")                    \
    X(MEASURE_EXAMPLES_TO, "examples_to",                                                   \
      "millions of examples seen at the first evaluation whose accuracy reached `reach`%")  \
    X(MEASURE_EPOCHS_TO, "epochs_to",                                                       \
      "the same in epochs of train.epoch_size examples (the paper's 300,000)")
typedef enum { MEASURES(ENUM_VALUE) MEASURE_COUNT } measure_kind;
ENUM_TABLE_DEFINE(MEASURE_TABLE, MEASURES);

/* One [table], [row ID], [column ID] or [run ID] section: its value of each single key ("" when
 * absent) and its repeatable lines. */
typedef struct {
    char id[ID_MAX];
    int line; /* of its header, for messages */
    char value[KEY_COUNT][VALUE_MAX];
    char (*lines[KEY_COUNT])[VALUE_MAX]; /* repeatable keys: up to MAX_SETS lines */
    int nlines[KEY_COUNT];
    char published[MAX_COLS][24];
    int npublished;
} section;

typedef struct {
    char path[PATH_MAX], dir[PATH_MAX]; /* the grid file and its folder */
    section table, rows[MAX_ROWS], cols[MAX_COLS], aux[MAX_AUX];
    int nrows, ncols, naux;
} grid;

/* A run: a training run directory, and what makes it. */
typedef struct {
    char name[2 * ID_MAX + 2];
    const section *parts[3]; /* table, then the sections that give it keys */
    int nparts;
    char config[PATH_MAX];
    int init_from; /* index of the run whose best.h5 starts it, or -1 */
    int group;     /* the job-array task: the run at the root of its init_from chain */
} run_def;

/* An evaluation of a run on other data: named by the ids of the table ("table"), row and
 * column that give it test lines. */
typedef struct {
    char name[3 * ID_MAX + 3];
    int run;
    const section *parts[3];
    int nparts;
} test_def;

/* A cell: which run, which evaluation (-1: the run's own), what to read. */
typedef struct {
    int run, test;
    const char *ood; /* the out-of-distribution set the run evaluated, or NULL: its test set */
    measure_kind measure;
    lawt_norm norm;
    double tolerance, reach;
    double until; /* epochs; 0: the whole run */
} cell_def;

typedef struct {
    grid g;
    run_def runs[MAX_RUNS];
    int nruns;
    test_def tests[MAX_RUNS];
    int ntests;
    cell_def cells[MAX_ROWS][MAX_COLS];
    int ngroups;
    const char *runs_dir, *dist;
    int smoke;
} plan;

static int fail(char *err, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errcap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
    return -1;
}

/* a, sep and b into out (cap bytes); a result that does not fit is fatal (ids and values are
 * bounded, PATH_MAX holds any path the system takes). */
static void concat(char *out, size_t cap, const char *a, const char *sep, const char *b)
{
    size_t na = strlen(a), ns = strlen(sep), nb = strlen(b);
    if (na + ns + nb >= cap) lawt_die("lawt_table: '%s%s%s' is longer than %zu characters", a, sep, b, cap - 1);
    memmove(out, a, na);
    memcpy(out + na, sep, ns);
    memcpy(out + na + ns, b, nb + 1);
}

/* ---- reading the grid file ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n')) *--end = '\0';
    return s;
}

static int valid_id(const char *s)
{
    if (!*s || strlen(s) >= ID_MAX) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.' || *s == '+'))
            return 0;
    return 1;
}

static int key_of(const char *name)
{
    for (int k = 0; k < KEY_COUNT; k++)
        if (strcmp(KEYS[k].name, name) == 0) return k;
    return -1;
}

static const char *where_name(int where)
{
    return where == IN_TABLE ? "[table]" : where == IN_ROW ? "[row]" : where == IN_COLUMN ? "[column]" : "[run]";
}

static int add_line(section *s, int k, const char *value, const char *path, int lineno, char *err,
                    size_t errcap)
{
    if (!s->lines[k]) s->lines[k] = lawt_calloc(MAX_SETS, sizeof *s->lines[k]);
    if (s->nlines[k] == MAX_SETS)
        return fail(err, errcap, "%s:%d: more than %d '%s' lines in one section", path, lineno,
                    MAX_SETS, KEYS[k].name);
    snprintf(s->lines[k][s->nlines[k]++], VALUE_MAX, "%s", value);
    return 0;
}

/* A KEY=VALUE line: a section.key before the '='. */
static int check_assignment(const char *value, const char *path, int lineno, const char *key,
                            char *err, size_t errcap)
{
    const char *eq = strchr(value, '=');
    const char *dot = strchr(value, '.');
    if (!eq || !dot || dot > eq || dot == value || eq == dot + 1)
        return fail(err, errcap, "%s:%d: %s = '%s': expected SECTION.KEY=VALUE (e.g. "
                    "data.eig_law=gaussian)", path, lineno, key, value);
    return 0;
}

static int parse_published(section *s, const char *value, const char *path, int lineno, char *err,
                           size_t errcap)
{
    char buf[VALUE_MAX];
    snprintf(buf, sizeof buf, "%s", value);
    s->npublished = 0;
    for (char *tok = strtok(buf, " \t"); tok; tok = strtok(NULL, " \t")) {
        if (s->npublished == MAX_COLS)
            return fail(err, errcap, "%s:%d: published: more than %d numbers", path, lineno, MAX_COLS);
        if (strlen(tok) >= sizeof s->published[0])
            return fail(err, errcap, "%s:%d: published: '%s' is too long", path, lineno, tok);
        snprintf(s->published[s->npublished++], sizeof s->published[0], "%s", tok);
    }
    return 0;
}

/* The blank-separated words of a value: their count, and word j (from 0) into buf ("" past the
 * last). */
static int count_words(const char *list)
{
    int n = 0;
    for (const char *s = list;; n++) {
        s += strspn(s, " \t");
        if (!*s) return n;
        s += strcspn(s, " \t");
    }
}

static const char *word_of(const char *list, int j, char *buf, size_t cap)
{
    const char *s = list + strspn(list, " \t");
    for (int k = 0; k < j && *s; k++) {
        s += strcspn(s, " \t");
        s += strspn(s, " \t");
    }
    size_t n = strcspn(s, " \t");
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
    return buf;
}

static void free_section(section *s)
{
    for (int k = 0; k < KEY_COUNT; k++) free(s->lines[k]);
}

static void grid_free(grid *g)
{
    free_section(&g->table);
    for (int i = 0; i < g->nrows; i++) free_section(&g->rows[i]);
    for (int i = 0; i < g->ncols; i++) free_section(&g->cols[i]);
    for (int i = 0; i < g->naux; i++) free_section(&g->aux[i]);
}

static int grid_read(grid *g, const char *path, char *err, size_t errcap)
{
    memset(g, 0, sizeof *g);
    snprintf(g->path, sizeof g->path, "%s", path);
    snprintf(g->dir, sizeof g->dir, "%s", path);
    char *slash = strrchr(g->dir, '/');
    if (slash) *slash = '\0';
    else snprintf(g->dir, sizeof g->dir, ".");
    FILE *f = fopen(path, "r");
    if (!f) return fail(err, errcap, "%s: cannot open the grid file: %s", path, strerror(errno));
    char raw[1024];
    int lineno = 0, rc = 0, seen_table = 0;
    section *cur = NULL;
    int where = 0;
    while (rc == 0 && fgets(raw, sizeof raw, f)) {
        lineno++;
        if (!strchr(raw, '\n') && !feof(f)) {
            rc = fail(err, errcap, "%s:%d: line longer than %zu characters", path, lineno, sizeof raw - 2);
            break;
        }
        char *comment = strstr(raw, " ;");
        if (comment) *comment = '\0';
        char *line = trim(raw);
        if (!*line || *line == ';' || *line == '#') continue;
        if (*line == '[') {
            char *close = strchr(line, ']');
            if (!close || close[1]) {
                rc = fail(err, errcap, "%s:%d: '%s': a section header is [table], [row ID], "
                          "[column ID] or [run ID]", path, lineno, line);
                break;
            }
            *close = '\0';
            char *name = trim(line + 1), *id = name + strcspn(name, " \t");
            if (*id) *id++ = '\0';
            id = trim(id);
            if (strcmp(name, "table") == 0 && !*id) {
                if (seen_table) {
                    rc = fail(err, errcap, "%s:%d: a second [table] section", path, lineno);
                    break;
                }
                seen_table = 1;
                cur = &g->table;
                where = IN_TABLE;
            } else if (strcmp(name, "row") == 0 || strcmp(name, "column") == 0 || strcmp(name, "run") == 0) {
                int is_row = strcmp(name, "row") == 0, is_col = strcmp(name, "column") == 0;
                section *list = is_row ? g->rows : is_col ? g->cols : g->aux;
                int *n = is_row ? &g->nrows : is_col ? &g->ncols : &g->naux;
                int cap = is_row ? MAX_ROWS : is_col ? MAX_COLS : MAX_AUX;
                if (!valid_id(id)) {
                    rc = fail(err, errcap, "%s:%d: [%s %s]: an id is 1 to %d letters, digits or "
                              "_ - . + (it names run directories)", path, lineno, name, id, ID_MAX - 1);
                    break;
                }
                for (int i = 0; i < *n; i++)
                    if (strcmp(list[i].id, id) == 0) {
                        rc = fail(err, errcap, "%s:%d: [%s %s] is defined twice (line %d first)",
                                  path, lineno, name, id, list[i].line);
                        break;
                    }
                if (rc) break;
                if (*n == cap) {
                    rc = fail(err, errcap, "%s:%d: more than %d [%s] sections", path, lineno, cap, name);
                    break;
                }
                cur = &list[(*n)++];
                snprintf(cur->id, sizeof cur->id, "%s", id);
                cur->line = lineno;
                where = is_row ? IN_ROW : is_col ? IN_COLUMN : IN_RUN;
            } else {
                rc = fail(err, errcap, "%s:%d: unknown section [%s]: sections are [table], [row ID], "
                          "[column ID] and [run ID]", path, lineno, name);
                break;
            }
            continue;
        }
        char *eq = strchr(line, '=');
        if (!eq) {
            rc = fail(err, errcap, "%s:%d: '%s': expected KEY = VALUE", path, lineno, line);
            break;
        }
        *eq = '\0';
        char *key = trim(line), *value = trim(eq + 1);
        int k = key_of(key);
        if (!cur) {
            rc = fail(err, errcap, "%s:%d: '%s' before any section ([table] comes first)", path, lineno, key);
        } else if (k < 0) {
            rc = fail(err, errcap, "%s:%d: unknown key '%s' (lawt_table --help-format lists them)",
                      path, lineno, key);
        } else if (!(KEYS[k].where & where)) {
            rc = fail(err, errcap, "%s:%d: '%s' does not belong in a %s section", path, lineno, key,
                      where_name(where));
        } else if (strlen(value) >= VALUE_MAX) {
            rc = fail(err, errcap, "%s:%d: %s: value longer than %d characters", path, lineno, key,
                      VALUE_MAX - 1);
        } else if (KEYS[k].repeatable) {
            if (k != KEY_NOTE) rc = check_assignment(value, path, lineno, key, err, errcap);
            if (rc == 0) rc = add_line(cur, k, value, path, lineno, err, errcap);
        } else if (cur->value[k][0]) {
            rc = fail(err, errcap, "%s:%d: '%s' given twice in one section", path, lineno, key);
        } else if (!*value) {
            rc = fail(err, errcap, "%s:%d: '%s' has an empty value", path, lineno, key);
        } else if (k == KEY_RUN && !valid_id(value)) {
            rc = fail(err, errcap, "%s:%d: run = %s: a run name is 1 to %d letters, digits or _ - . +",
                      path, lineno, value, ID_MAX - 1);
        } else {
            snprintf(cur->value[k], VALUE_MAX, "%s", value);
            if (k == KEY_PUBLISHED) rc = parse_published(cur, value, path, lineno, err, errcap);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (rc == 0 && bad) rc = fail(err, errcap, "%s: read error", path);
    if (rc == 0 && !seen_table) rc = fail(err, errcap, "%s: no [table] section", path);
    if (rc == 0 && !g->table.value[KEY_TITLE][0]) rc = fail(err, errcap, "%s: [table] has no title", path);
    if (rc == 0 && (g->nrows == 0 || g->ncols == 0))
        rc = fail(err, errcap, "%s: a table needs at least one [row ID] and one [column ID]", path);
    for (int i = 0; rc == 0 && i < g->nrows; i++)
        if (g->rows[i].npublished && g->rows[i].npublished != g->ncols)
            rc = fail(err, errcap, "%s: [row %s]: published has %d numbers for %d columns (- where "
                      "the paper has none)", path, g->rows[i].id, g->rows[i].npublished, g->ncols);
    for (int i = 0; rc == 0 && i < g->nrows; i++) {
        int n = count_words(g->rows[i].value[KEY_RUNS]);
        if (g->rows[i].value[KEY_RUNS][0] && n != g->ncols)
            rc = fail(err, errcap, "%s: [row %s]: runs has %d names for %d columns (- for an empty "
                      "cell)", path, g->rows[i].id, n, g->ncols);
    }
    if (rc) grid_free(g);
    return rc;
}

/* ---- from the grid to runs, tests and cells ---- */

static int gives_run(const section *s)
{
    return s->value[KEY_CONFIG][0] || s->nlines[KEY_SET] || s->value[KEY_INIT_FROM][0];
}

/* The value of a single key for a cell: the column's, else the row's, else the table's; a key
 * that both the row and the column give is a mistake in the grid. */
static int cell_value(const grid *g, const section *row, const section *col, int k, const char **v,
                      char *err, size_t errcap)
{
    if (row->value[k][0] && col->value[k][0])
        return fail(err, errcap, "%s: [row %s] and [column %s] both set '%s': a cell takes it from "
                    "one of them", g->path, row->id, col->id, KEYS[k].name);
    *v = col->value[k][0] ? col->value[k] : row->value[k][0] ? row->value[k] : g->table.value[k];
    return 0;
}

static int find_run(const plan *p, const char *name)
{
    for (int i = 0; i < p->nruns; i++)
        if (strcmp(p->runs[i].name, name) == 0) return i;
    return -1;
}

/* What makes a run, as text: its config, its set lines in order and its init_from. */
static void run_signature(const section *const *parts, int nparts, char *out, size_t cap)
{
    lawt_text t = {out, cap, 0};
    const char *config = "", *from = "";
    for (int i = 0; i < nparts; i++) {
        if (parts[i]->value[KEY_CONFIG][0]) config = parts[i]->value[KEY_CONFIG];
        if (parts[i]->value[KEY_INIT_FROM][0]) from = parts[i]->value[KEY_INIT_FROM];
    }
    lawt_appendf(&t, "config %s\ninit_from %s\n", config, from);
    for (int i = 0; i < nparts; i++)
        for (int l = 0; l < parts[i]->nlines[KEY_SET]; l++) lawt_appendf(&t, "set %s\n", parts[i]->lines[KEY_SET][l]);
}

/* The run made of parts (the table first), named name. A run of that name already made is the
 * same one, when the same keys make it. */
static int add_run(plan *p, const char *name, const section *const *parts, int nparts, char *err,
                   size_t errcap)
{
    int r = find_run(p, name);
    if (r >= 0) {
        char a[8192], b[8192];
        run_signature(p->runs[r].parts, p->runs[r].nparts, a, sizeof a);
        run_signature(parts, nparts, b, sizeof b);
        if (strcmp(a, b) != 0)
            return fail(err, errcap, "%s: two cells make run '%s' with different keys (give their "
                        "rows or columns different run names):\n%s---\n%s", p->g.path, name, a, b);
        return r;
    }
    if (p->nruns == MAX_RUNS) return fail(err, errcap, "%s: more than %d runs", p->g.path, MAX_RUNS);
    run_def *run = &p->runs[p->nruns];
    memset(run, 0, sizeof *run);
    snprintf(run->name, sizeof run->name, "%s", name);
    const char *config = ""; /* the last section's that gives one (cell_value refused two) */
    for (int i = 0; i < nparts; i++) {
        run->parts[run->nparts++] = parts[i];
        if (parts[i]->value[KEY_CONFIG][0]) config = parts[i]->value[KEY_CONFIG];
    }
    if (!config[0])
        return fail(err, errcap, "%s: run %s has no config (a job file): give one in [table] or in "
                    "its row or column", p->g.path, name);
    if (config[0] == '/') concat(run->config, sizeof run->config, "", "", config);
    else concat(run->config, sizeof run->config, p->g.dir, "/", config);
    run->init_from = -1;
    return p->nruns++;
}

/* The init_from names into run indices, and each run's group: the root of its chain. */
static int link_runs(plan *p, char *err, size_t errcap)
{
    for (int r = 0; r < p->nruns; r++) {
        run_def *run = &p->runs[r];
        const char *from = "";
        for (int i = 0; i < run->nparts; i++)
            if (run->parts[i]->value[KEY_INIT_FROM][0]) from = run->parts[i]->value[KEY_INIT_FROM];
        if (!from[0]) continue;
        run->init_from = find_run(p, from);
        if (run->init_from < 0)
            return fail(err, errcap, "%s: run %s: init_from = %s names no run of this grid (a [run "
                        "ID] section, or a row or column's run)", p->g.path, run->name, from);
    }
    for (int r = 0; r < p->nruns; r++) {
        int root = r, hops = 0;
        while (p->runs[root].init_from >= 0) {
            root = p->runs[root].init_from;
            if (++hops > p->nruns)
                return fail(err, errcap, "%s: run %s: init_from goes round in a circle", p->g.path,
                            p->runs[r].name);
        }
        p->runs[r].group = root;
    }
    /* Groups numbered in the order of their roots. */
    int number[MAX_RUNS];
    p->ngroups = 0;
    for (int r = 0; r < p->nruns; r++) number[r] = p->runs[r].group == r ? p->ngroups++ : -1;
    for (int r = 0; r < p->nruns; r++) p->runs[r].group = number[p->runs[r].group];
    return 0;
}

static int parse_number(const char *s, double *x)
{
    char *end;
    *x = strtod(s, &end);
    return end == s || *end || !isfinite(*x) ? -1 : 0;
}

/* 1 when row's omit list names column j. */
static int omitted(const grid *g, const section *row, int j)
{
    char buf[VALUE_MAX];
    snprintf(buf, sizeof buf, "%s", row->value[KEY_OMIT]);
    for (char *tok = strtok(buf, " \t"); tok; tok = strtok(NULL, " \t"))
        if (strcmp(tok, g->cols[j].id) == 0) return 1;
    return 0;
}

static int plan_build(plan *p, char *err, size_t errcap)
{
    grid *g = &p->g;
    for (int i = 0; i < g->nrows; i++) {
        char buf[VALUE_MAX];
        snprintf(buf, sizeof buf, "%s", g->rows[i].value[KEY_OMIT]);
        for (char *tok = strtok(buf, " \t"); tok; tok = strtok(NULL, " \t")) {
            int j = 0;
            while (j < g->ncols && strcmp(g->cols[j].id, tok) != 0) j++;
            if (j == g->ncols)
                return fail(err, errcap, "%s: [row %s]: omit names '%s', which is no column id",
                            g->path, g->rows[i].id, tok);
        }
    }
    p->nruns = p->ntests = 0;
    /* [run] sections first: a run that others start from is run before them in its group. */
    for (int a = 0; a < g->naux; a++) {
        const section *parts[2] = {&g->table, &g->aux[a]};
        if (add_run(p, g->aux[a].id, parts, 2, err, errcap) < 0) return -1;
    }
    for (int i = 0; i < g->nrows; i++)
        for (int j = 0; j < g->ncols; j++) {
            const section *row = &g->rows[i], *col = &g->cols[j];
            cell_def *c = &p->cells[i][j];
            const section *parts[3] = {&g->table};
            int nparts = 1;
            char name[sizeof p->runs[0].name] = "", listed[VALUE_MAX];
            /* The run that the row's runs list names for this column, or "". */
            word_of(row->value[KEY_RUNS], j, listed, sizeof listed);
            if (omitted(g, row, j) || strcmp(listed, "-") == 0) {
                c->run = c->test = -1;
                continue;
            }
            const section *axes[3] = {&g->table, row, col};
            for (int a = 1; a < 3; a++) {
                if (!gives_run(axes[a])) continue;
                parts[nparts++] = axes[a];
                concat(name, sizeof name, name, name[0] ? "-" : "",
                       axes[a]->value[KEY_RUN][0] ? axes[a]->value[KEY_RUN] : axes[a]->id);
            }
            if (!name[0]) snprintf(name, sizeof name, "base");
            static const int CELL_KEYS[] = {KEY_CONFIG, KEY_INIT_FROM, KEY_MEASURE, KEY_NORM,
                                            KEY_TOLERANCE, KEY_REACH, KEY_UNTIL, KEY_OOD};
            for (size_t k = 0; k < sizeof CELL_KEYS / sizeof CELL_KEYS[0]; k++) {
                const char *v;
                if (cell_value(g, row, col, CELL_KEYS[k], &v, err, errcap)) return -1;
            }
            if (listed[0]) {
                if (gives_run(row) || gives_run(col))
                    return fail(err, errcap, "%s: [row %s] names its cells' runs (runs = ...), and "
                                "[%s %s] gives run keys (config, set, init_from) too", g->path,
                                row->id, gives_run(row) ? "row" : "column",
                                gives_run(row) ? row->id : col->id);
                c->run = find_run(p, listed);
                if (c->run < 0 || c->run >= g->naux)
                    return fail(err, errcap, "%s: [row %s]: runs names '%s', which is no [run ID] "
                                "section of this grid", g->path, row->id, listed);
            } else if ((c->run = add_run(p, name, parts, nparts, err, errcap)) < 0) {
                return -1;
            }

            /* The evaluation on other data, when the table, row or column has test lines. */
            c->test = -1;
            const section *tparts[3];
            int ntparts = 0;
            char tname[sizeof p->tests[0].name] = "";
            for (int a = 0; a < 3; a++) {
                if (!axes[a]->nlines[KEY_TEST]) continue;
                tparts[ntparts++] = axes[a];
                concat(tname, sizeof tname, tname, tname[0] ? "-" : "", a == 0 ? "table" : axes[a]->id);
            }
            if (ntparts) {
                int t = 0;
                while (t < p->ntests && !(p->tests[t].run == c->run && strcmp(p->tests[t].name, tname) == 0)) t++;
                if (t == p->ntests) {
                    test_def *td = &p->tests[p->ntests++];
                    concat(td->name, sizeof td->name, "", "", tname);
                    td->run = c->run;
                    td->nparts = ntparts;
                    memcpy(td->parts, tparts, sizeof tparts);
                }
                c->test = t;
            }

            const char *v;
            cell_value(g, row, col, KEY_MEASURE, &v, err, errcap);
            int m = v[0] ? enum_from_name(&MEASURE_TABLE, v) : MEASURE_FINAL;
            if (m < 0) {
                char names[128];
                return fail(err, errcap, "%s: cell (%s, %s): measure = %s: not one of %s", g->path,
                            row->id, col->id, v, enum_names_join(&MEASURE_TABLE, ", ", names, sizeof names));
            }
            c->measure = (measure_kind)m;
            cell_value(g, row, col, KEY_NORM, &v, err, errcap);
            int norm = -1;
            for (int n = 0; n < LAWT_NORM_COUNT; n++)
                if (strcasecmp(v[0] ? v : "L1", norm_name((lawt_norm)n)) == 0) norm = n;
            if (norm < 0)
                return fail(err, errcap, "%s: cell (%s, %s): norm = %s: not one of L1, L2, Linf",
                            g->path, row->id, col->id, v);
            c->norm = (lawt_norm)norm;
            cell_value(g, row, col, KEY_TOLERANCE, &v, err, errcap);
            if (parse_number(v[0] ? v : "5", &c->tolerance) || c->tolerance <= 0 || c->tolerance > 100)
                return fail(err, errcap, "%s: cell (%s, %s): tolerance = %s: expected a percentage "
                            "in (0, 100]", g->path, row->id, col->id, v);
            cell_value(g, row, col, KEY_REACH, &v, err, errcap);
            if (parse_number(v[0] ? v : "95", &c->reach) || c->reach <= 0 || c->reach > 100)
                return fail(err, errcap, "%s: cell (%s, %s): reach = %s: expected a percentage in "
                            "(0, 100]", g->path, row->id, col->id, v);
            cell_value(g, row, col, KEY_UNTIL, &v, err, errcap);
            c->until = 0;
            if (v[0] && (parse_number(v, &c->until) || c->until <= 0))
                return fail(err, errcap, "%s: cell (%s, %s): until = %s: expected a number of epochs "
                            "> 0", g->path, row->id, col->id, v);
            cell_value(g, row, col, KEY_OOD, &v, err, errcap);
            c->ood = v[0] ? v : NULL;
            if (c->ood && c->test >= 0)
                return fail(err, errcap, "%s: cell (%s, %s): ood = %s reads the run's own "
                            "evaluations; test lines evaluate it on other data: one or the other",
                            g->path, row->id, col->id, c->ood);
            if (c->test >= 0 && (c->measure == MEASURE_EXAMPLES_TO || c->measure == MEASURE_EPOCHS_TO))
                return fail(err, errcap, "%s: cell (%s, %s): measure = %s reads a training history; "
                            "an evaluation on other data (test) has one record", g->path, row->id,
                            col->id, enum_name(&MEASURE_TABLE, c->measure));
        }
    if (p->smoke && !g->table.nlines[KEY_SMOKE])
        return fail(err, errcap, "%s: --smoke: the grid has no smoke lines in [table]", g->path);
    return link_runs(p, err, errcap);
}

/* ---- what a run directory holds ---- */

typedef enum {
    STATE_MISSING,     /* no train.log: never started */
    STATE_BUSY,        /* a lawt_dist holds its run.lock now */
    STATE_INCOMPLETE,  /* started, not done: stopped, killed or failed; resumable from a checkpoint */
    STATE_COMPLETE,    /* its last segment ended with "done:" */
} run_state;

typedef struct {
    run_state state;
    long step, last_step; /* from the last train line; -1 when none */
    int has_checkpoint;
} run_status;

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    concat(out, cap, dir, "/", name);
}

/* 1 when a process holds a POSIX lock on dir/run.lock (a trainer at work in it). */
static int lock_held(const char *dir)
{
    char path[PATH_MAX];
    join(path, sizeof path, dir, "run.lock");
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    struct flock lock = {0};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    int held = fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
    close(fd);
    return held;
}

/* The state of a training run directory, from its train.log: each segment (a start or a resume)
 * begins with the "lawt VERSION | ..." line, prints "train ... | step S/L | ..." lines and ends
 * with "done: ..." or "stopped: ..."; a segment killed outright ends with neither. */
static run_status run_dir_status(const char *dir)
{
    run_status s = {STATE_MISSING, -1, -1, 0};
    char path[PATH_MAX];
    join(path, sizeof path, dir, "train.log");
    FILE *f = fopen(path, "r");
    if (!f) return s;
    char line[2048];
    int started = 0, done = 0;
    while (fgets(line, sizeof line, f)) {
        long step, last;
        const char *at;
        if (strncmp(line, "lawt ", 5) == 0 && strstr(line, " | ")) started = 1, done = 0;
        else if (strncmp(line, "done: ", 6) == 0) done = 1;
        else if (strncmp(line, "stopped: ", 9) == 0 && sscanf(line, "stopped: %ld steps", &step) == 1)
            done = 0, s.step = step;
        else if (strncmp(line, "train  ", 7) == 0 && (at = strstr(line, "| step ")) &&
                 sscanf(at, "| step %ld/%ld", &step, &last) == 2)
            s.step = step, s.last_step = last;
    }
    fclose(f);
    char latest[PATH_MAX];
    s.has_checkpoint = checkpoint_latest(dir, latest, sizeof latest) == 0;
    if (lock_held(dir)) s.state = STATE_BUSY;
    else if (started && done) s.state = STATE_COMPLETE;
    else if (started || s.has_checkpoint) s.state = STATE_INCOMPLETE;
    return s;
}

/* ---- paths and commands ---- */

static void run_path(const plan *p, int r, char *out, size_t cap)
{
    join(out, cap, p->runs_dir, p->runs[r].name);
}

static void test_path(const plan *p, int t, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.test-%s", p->runs_dir, p->runs[p->tests[t].run].name, p->tests[t].name);
}

/* A command line: argv strings owned by the command. */
typedef struct {
    char *argv[4 * MAX_SETS + 32];
    int argc;
} command;

static void arg(command *c, const char *s)
{
    if (c->argc + 2 > (int)(sizeof c->argv / sizeof c->argv[0])) lawt_die("lawt_table: command too long");
    size_t n = strlen(s) + 1;
    c->argv[c->argc] = lawt_malloc(n);
    memcpy(c->argv[c->argc++], s, n);
    c->argv[c->argc] = NULL;
}

static void command_free(command *c)
{
    for (int i = 0; i < c->argc; i++) free(c->argv[i]);
    c->argc = 0;
}

static void launcher_args(command *c, const char *launcher)
{
    if (!launcher) return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", launcher);
    for (char *tok = strtok(buf, " \t"); tok; tok = strtok(NULL, " \t")) arg(c, tok);
}

static void set_arg(command *c, const char *assignment)
{
    arg(c, "--set");
    arg(c, assignment);
}

/* The command that takes run r forward from state s: a new run, or --resume. For --check
 * (check = 1): the new run's configuration without a run directory, and without init_from,
 * whose checkpoint a check cannot have. */
static void train_command(const plan *p, int r, const run_status *s, const char *launcher, int check,
                          command *c)
{
    const run_def *run = &p->runs[r];
    char dir[PATH_MAX];
    run_path(p, r, dir, sizeof dir);
    launcher_args(c, launcher);
    arg(c, p->dist);
    if (s->has_checkpoint) {
        /* The checkpoint holds the run's configuration: the same experiment goes on. */
        arg(c, "--resume");
    } else {
        arg(c, "--config");
        arg(c, run->config);
        for (int i = 0; i < run->nparts; i++)
            for (int l = 0; l < run->parts[i]->nlines[KEY_SET]; l++) set_arg(c, run->parts[i]->lines[KEY_SET][l]);
        if (run->init_from >= 0 && !check) {
            char from[PATH_MAX + 32], base[PATH_MAX];
            run_path(p, run->init_from, base, sizeof base);
            snprintf(from, sizeof from, "run.init_from=%s/best.h5", base);
            set_arg(c, from);
        }
        if (p->smoke)
            for (int l = 0; l < p->g.table.nlines[KEY_SMOKE]; l++) set_arg(c, p->g.table.lines[KEY_SMOKE][l]);
    }
    if (!check) {
        arg(c, "--run-dir");
        arg(c, dir);
    }
}

static void test_command(const plan *p, int t, const char *launcher, command *c)
{
    const test_def *td = &p->tests[t];
    char dir[PATH_MAX], ckpt[PATH_MAX];
    run_path(p, td->run, dir, sizeof dir);
    join(ckpt, sizeof ckpt, dir, "best.h5");
    launcher_args(c, launcher);
    arg(c, p->dist);
    arg(c, "--evaluate");
    arg(c, ckpt);
    for (int i = 0; i < td->nparts; i++)
        for (int l = 0; l < td->parts[i]->nlines[KEY_TEST]; l++) set_arg(c, td->parts[i]->lines[KEY_TEST][l]);
    test_path(p, t, dir, sizeof dir);
    arg(c, "--run-dir");
    arg(c, dir);
}

/* A word as the shell reads it back. */
static void put_word(FILE *f, const char *s)
{
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,/:=+@%") == strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    fputc('\'', f);
}

static void put_command(FILE *f, const command *c)
{
    for (int i = 0; i < c->argc; i++) {
        if (i) fputc(' ', f);
        put_word(f, c->argv[i]);
    }
    fputc('\n', f);
}

/* An evaluation is complete when its directory's metrics.jsonl has an eval record. */
static int test_done(const plan *p, int t)
{
    char dir[PATH_MAX], path[PATH_MAX];
    test_path(p, t, dir, sizeof dir);
    join(path, sizeof path, dir, "metrics.jsonl");
    run_curves c;
    char err[512];
    if (curves_read_file(path, &c, err, sizeof err)) return 0;
    int done = c.neval > 0;
    curves_free(&c);
    return done;
}

/* ---- --plan, --run, --slurm, --check ---- */

static void print_plan(const plan *p)
{
    printf("# %s: %d run%s in %d job-array task%s, %d evaluation%s on other data%s\n", p->g.path,
           p->nruns, p->nruns == 1 ? "" : "s", p->ngroups, p->ngroups == 1 ? "" : "s", p->ntests,
           p->ntests == 1 ? "" : "s", p->smoke ? " (smoke)" : "");
    for (int k = 0; k < p->ngroups; k++) {
        printf("# task %d\n", k);
        for (int r = 0; r < p->nruns; r++) {
            if (p->runs[r].group != k) continue;
            char dir[PATH_MAX];
            run_path(p, r, dir, sizeof dir);
            run_status s = run_dir_status(dir);
            command c = {0};
            if (s.state == STATE_COMPLETE) printf("# complete: %s\n", dir);
            else if (s.state == STATE_BUSY) printf("# in use by a lawt_dist now: %s\n", dir);
            else {
                train_command(p, r, &s, NULL, 0, &c);
                put_command(stdout, &c);
                command_free(&c);
            }
            for (int t = 0; t < p->ntests; t++) {
                if (p->tests[t].run != r) continue;
                char tdir[PATH_MAX];
                test_path(p, t, tdir, sizeof tdir);
                if (test_done(p, t)) {
                    printf("# complete: %s\n", tdir);
                    continue;
                }
                test_command(p, t, NULL, &c);
                put_command(stdout, &c);
                command_free(&c);
            }
        }
    }
}

static volatile sig_atomic_t child_pid = 0, stop_signal = 0;

static void forward_signal(int sig)
{
    stop_signal = sig;
    if (child_pid > 0) kill(child_pid, sig);
}

/* Runs c, passing SIGTERM and SIGUSR1 on to it (lawt_dist then checkpoints and exits
 * 75). Returns its exit status, 128 + N when killed by signal N, or -1 when it cannot start. */
static int execute(const command *c)
{
    put_command(stdout, c);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "lawt_table: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execvp(c->argv[0], c->argv);
        fprintf(stderr, "lawt_table: cannot run %s: %s\n", c->argv[0], strerror(errno));
        _exit(127);
    }
    child_pid = pid;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "lawt_table: waitpid: %s\n", strerror(errno));
            child_pid = 0;
            return -1;
        }
    child_pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs run r (its base first, when it starts from one) and its evaluations. visited[r]: 0 not
 * yet, 1 its training is complete, 2 it is not (failed, or its base did). Returns 0, 1 when
 * something failed, EXIT_STOPPED when a signal stops everything. */
static int run_one(const plan *p, int r, const char *launcher, int *visited)
{
    if (visited[r]) return visited[r] == 1 ? 0 : 1;
    const run_def *run = &p->runs[r];
    if (run->init_from >= 0) {
        /* Its failures are the base run's own: counted where run_grid runs it. */
        if (run_one(p, run->init_from, launcher, visited) == EXIT_STOPPED) return EXIT_STOPPED;
        if (visited[run->init_from] != 1) {
            fprintf(stderr, "lawt_table: %s not run: it starts from %s, which did not complete\n",
                    run->name, p->runs[run->init_from].name);
            visited[r] = 2;
            return 1;
        }
    }
    char dir[PATH_MAX];
    run_path(p, r, dir, sizeof dir);
    run_status s = run_dir_status(dir);
    visited[r] = 2;
    if (s.state == STATE_BUSY) {
        fprintf(stderr, "lawt_table: %s: a lawt_dist is training there now: left alone\n", dir);
        return 1;
    }
    if (s.state == STATE_COMPLETE) {
        printf("# complete: %s\n", dir);
    } else {
        if (mkdir(p->runs_dir, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "lawt_table: cannot create %s: %s\n", p->runs_dir, strerror(errno));
            return 1;
        }
        command c = {0};
        train_command(p, r, &s, launcher, 0, &c);
        int status = execute(&c);
        command_free(&c);
        if (status == EXIT_STOPPED || stop_signal) return EXIT_STOPPED;
        if (status != 0) {
            fprintf(stderr, "lawt_table: %s failed (exit status %d): see %s/train.log\n", run->name,
                    status, dir);
            return 1;
        }
        if (run_dir_status(dir).state != STATE_COMPLETE) {
            fprintf(stderr, "lawt_table: %s: lawt_dist exited 0 but %s/train.log does not end its "
                    "run with done:\n", run->name, dir);
            return 1;
        }
    }
    visited[r] = 1;
    int failed = 0;
    for (int t = 0; t < p->ntests; t++) {
        if (p->tests[t].run != r) continue;
        char tdir[PATH_MAX];
        test_path(p, t, tdir, sizeof tdir);
        if (test_done(p, t)) {
            printf("# complete: %s\n", tdir);
            continue;
        }
        command c = {0};
        test_command(p, t, launcher, &c);
        int status = execute(&c);
        command_free(&c);
        if (status == EXIT_STOPPED || stop_signal) return EXIT_STOPPED;
        if (status != 0) {
            fprintf(stderr, "lawt_table: evaluation %s failed (exit status %d)\n", tdir, status);
            failed = 1;
        }
    }
    return failed;
}

static int run_grid(const plan *p, int only, const char *launcher)
{
    struct sigaction sa = {0};
    sa.sa_handler = forward_signal;
    sigemptyset(&sa.sa_mask);
    /* lawt_dist's stop signals (comm.h); a ^C reaches lawt_dist itself, as its process group's. */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    int visited[MAX_RUNS] = {0}, failed = 0;
    for (int r = 0; r < p->nruns; r++) {
        if (only >= 0 && p->runs[r].group != only) continue;
        int rc = run_one(p, r, launcher, visited);
        if (rc == EXIT_STOPPED) {
            fprintf(stderr, "lawt_table: stopped by signal %d; --run again resumes\n", (int)stop_signal);
            return EXIT_STOPPED;
        }
        failed |= rc;
    }
    return failed;
}

static int print_slurm(const plan *p, const char *self, const char *grid_arg)
{
    /* Slurm opens the tasks' output files there before anything of ours runs. */
    if (mkdir(p->runs_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "lawt_table: cannot create %s (where the tasks' output goes): %s\n",
                p->runs_dir, strerror(errno));
        return 1;
    }
    char abs_self[PATH_MAX], abs_grid[PATH_MAX], abs_runs[PATH_MAX], abs_dist[PATH_MAX];
    /* This program as the job will find it: its own file, else the name it was run by. */
    ssize_t n = readlink("/proc/self/exe", abs_self, sizeof abs_self - 1);
    if (n > 0) abs_self[n] = '\0';
    else if (!realpath(self, abs_self)) snprintf(abs_self, sizeof abs_self, "%s", self);
    if (!realpath(grid_arg, abs_grid)) snprintf(abs_grid, sizeof abs_grid, "%s", grid_arg);
    if (!realpath(p->runs_dir, abs_runs)) snprintf(abs_runs, sizeof abs_runs, "%s", p->runs_dir);
    if (!strchr(p->dist, '/') || !realpath(p->dist, abs_dist)) snprintf(abs_dist, sizeof abs_dist, "%s", p->dist);
    const char *title = p->g.table.value[KEY_TITLE];
    printf("#!/bin/bash\n"
           "# %s%s: a Slurm job array of %d task%s, written by lawt_table --slurm.\n"
           "# Each task runs one run of the grid (with the runs that start from its weights, and\n"
           "# the evaluations of each): lawt_table --run --only $SLURM_ARRAY_TASK_ID, which skips\n"
           "# what is complete and resumes what has a checkpoint. 120 s before the time limit the\n"
           "# task checkpoints, stops and requeues itself. Adapt the resources to your cluster\n"
           "# (options given to sbatch override these lines); LAUNCHER starts lawt_dist. The\n"
           "# paper's 4-GPU jobs (Tables 8-10, train.batch_per_rank = 64): sbatch\n"
           "# --ntasks-per-node=4 --gpus-per-node=4 THIS_FILE.\n"
           "#   sbatch THIS_FILE            then: %s %s --runs %s%s\n",
           title, p->smoke ? " (smoke)" : "", p->ngroups, p->ngroups == 1 ? "" : "s", abs_self,
           abs_grid, abs_runs, p->smoke ? " --smoke" : "");
    printf("#SBATCH --job-name=lawt-table\n"
           "#SBATCH --array=0-%d\n"
           "#SBATCH --nodes=1\n"
           "#SBATCH --ntasks-per-node=1\n"
           "#SBATCH --gpus-per-node=1\n"
           "#SBATCH --cpus-per-task=8\n"
           "#SBATCH --time=24:00:00\n"
           "#SBATCH --requeue\n"
           "#SBATCH --signal=B:USR1@120\n"
           "#SBATCH --open-mode=append\n"
           "#SBATCH --output=%s/slurm-%%A_%%a.out\n"
           "set -uo pipefail\n"
           "LAWT_TABLE=${LAWT_TABLE:-", p->ngroups - 1, abs_runs);
    put_word(stdout, abs_self);
    printf("}\nLAWT_DIST=${LAWT_DIST:-");
    put_word(stdout, abs_dist);
    printf("}\nLAUNCHER=${LAUNCHER:-srun --mpi=pmix --kill-on-bad-exit=1}\n"
           "export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}\n"
           "task=${SLURM_ARRAY_TASK_ID:?run this script with sbatch}\n"
           "requeue=0\n"
           "pid=\n"
           "trap 'requeue=1; [ -n \"$pid\" ] && kill -USR1 \"$pid\"' USR1\n"
           "\"$LAWT_TABLE\" ");
    put_word(stdout, abs_grid);
    printf(" --runs ");
    put_word(stdout, abs_runs);
    printf("%s --run --only \"$task\" --dist \"$LAWT_DIST\" --launcher \"$LAUNCHER\" &\n"
           "pid=$!\n"
           "while :; do\n"
           "    wait \"$pid\"\n"
           "    status=$?\n"
           "    kill -0 \"$pid\" 2>/dev/null || break\n"
           "done\n"
           "if [ \"$status\" = %d ] && [ \"$requeue\" = 1 ]; then\n"
           "    scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${task}\" && exit 0\n"
           "fi\n"
           "exit \"$status\"\n",
           p->smoke ? " --smoke" : "", EXIT_STOPPED);
    return 0;
}

/* One lawt_dist of --check: its command, its process and the file of its output. */
typedef struct {
    command c;
    pid_t pid;
    char out[64];
    char what[256];
} check_job;

#define CHECK_PARALLEL 8 /* lawt_dist --memory-plan mostly waits for MPI to start */

static void check_start(check_job *j, int k)
{
    snprintf(j->out, sizeof j->out, "/tmp/lawt_table_check_%d_%d.txt", (int)getpid(), k);
    fflush(stdout);
    j->pid = fork();
    if (j->pid == 0) {
        int fd = open(j->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(j->c.argv[0], j->c.argv);
        fprintf(stderr, "lawt_dist: cannot run %s: %s\n", j->c.argv[0], strerror(errno));
        _exit(127);
    }
}

/* Waits for job j; prints its verdict (and, when bad, its command and lawt_dist's message).
 * Returns 1 when bad. */
static int check_finish(check_job *j)
{
    int status = -1;
    if (j->pid > 0)
        while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR) continue;
    int ok = j->pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("%s %s\n", ok ? "ok  " : "BAD ", j->what);
    if (!ok) {
        if (j->pid < 0) printf("fork: %s\n", strerror(errno));
        put_command(stdout, &j->c);
        FILE *f = fopen(j->out, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f))
            if (strstr(line, "lawt_dist:") || strstr(line, "error")) fputs(line, stdout);
        if (f) fclose(f);
    }
    unlink(j->out);
    command_free(&j->c);
    return !ok;
}

/* The first value of key in [section] of an INI file (a job file, or a run's config.ini) into
 * out, without an end-of-line comment; 0, or -1 when the file or the key is missing. */
static int ini_value(const char *path, const char *section, const char *key, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024], head[64];
    snprintf(head, sizeof head, "[%s]", section);
    size_t n = strlen(key);
    int in = 0, found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        char *comment = strstr(line, " ;");
        if (comment) *comment = '\0';
        char *s = trim(line), *eq = strchr(s, '=');
        if (*s == '[') in = strcmp(s, head) == 0;
        else if (in && eq && strncmp(s, key, n) == 0 && (s[n] == '=' || s[n] == ' ' || s[n] == '\t')) {
            snprintf(out, cap, "%s", trim(eq + 1));
            found = 0;
        }
    }
    fclose(f);
    return found;
}

/* The eval.ood of run r as lawt_dist will read it: the last set line that gives it (the smoke
 * lines last, with --smoke), else its job file's [eval] ood; "" when none. */
static void run_ood(const plan *p, int r, char *out, size_t cap)
{
    const run_def *run = &p->runs[r];
    out[0] = '\0';
    ini_value(run->config, "eval", "ood", out, cap);
    for (int i = 0; i <= run->nparts; i++) {
        const section *s = i < run->nparts ? run->parts[i] : &p->g.table;
        int k = i < run->nparts ? KEY_SET : KEY_SMOKE;
        if (k == KEY_SMOKE && !p->smoke) break;
        for (int l = 0; l < s->nlines[k]; l++) {
            char line[VALUE_MAX];
            snprintf(line, sizeof line, "%s", s->lines[k][l]);
            char *eq = strchr(line, '=');
            *eq = '\0';
            if (strcmp(trim(line), "eval.ood") == 0) snprintf(out, cap, "%s", trim(eq + 1));
        }
    }
}

/* 1 when the eval.ood list names the set `name` as its records do (config.c: "laplace@1" is
 * recorded as "laplace", "wigner@0.50" as "wigner@0.5"). */
static int ood_listed(const char *list, const char *name)
{
    char buf[VALUE_MAX], *save = NULL;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *law = trim(tok), recorded[VALUE_MAX + 32], *at = strchr(law, '@');
        double scale = 1;
        if (at) {
            *at = '\0';
            scale = strtod(at + 1, NULL);
        }
        if (scale != 1) snprintf(recorded, sizeof recorded, "%s@%g", law, scale);
        else snprintf(recorded, sizeof recorded, "%s", law);
        if (strcmp(recorded, name) == 0) return 1;
    }
    return 0;
}

/* lawt_dist --memory-plan on each run's configuration and each test's, CHECK_PARALLEL at a
 * time: the configuration is read and checked as a run would, nothing is built. And each cell
 * that reads an eval.ood set: its run evaluates that set. */
static int check_grid(const plan *p)
{
    int bad = 0, k = 0;
    for (int i = 0; i < p->g.nrows; i++)
        for (int j = 0; j < p->g.ncols; j++) {
            const cell_def *cell = &p->cells[i][j];
            if (cell->run < 0 || !cell->ood) continue;
            char list[VALUE_MAX];
            run_ood(p, cell->run, list, sizeof list);
            if (ood_listed(list, cell->ood)) continue;
            printf("BAD  cell (%s, %s): ood = %s, and run %s has eval.ood = '%s'\n", p->g.rows[i].id,
                   p->g.cols[j].id, cell->ood, p->runs[cell->run].name, list);
            bad = 1;
        }
    check_job jobs[CHECK_PARALLEL];
    for (int r = 0; r < p->nruns; r++) {
        run_status fresh = {STATE_MISSING, -1, -1, 0};
        for (int t = -1; t < p->ntests; t++) {
            if (t >= 0 && p->tests[t].run != r) continue;
            check_job *j = &jobs[k % CHECK_PARALLEL];
            if (k >= CHECK_PARALLEL) bad |= check_finish(j);
            memset(j, 0, sizeof *j);
            snprintf(j->what, sizeof j->what, "run %s%s%s", p->runs[r].name, t >= 0 ? " test " : "",
                     t >= 0 ? p->tests[t].name : "");
            train_command(p, r, &fresh, NULL, 1, &j->c);
            if (t >= 0)
                for (int i = 0; i < p->tests[t].nparts; i++)
                    for (int l = 0; l < p->tests[t].parts[i]->nlines[KEY_TEST]; l++)
                        set_arg(&j->c, p->tests[t].parts[i]->lines[KEY_TEST][l]);
            /* The paper's sizes are planned for a GPU (this machine's memory does not bound
             * them); a smoke run runs here, on the CPU. */
            if (!p->smoke) set_arg(&j->c, "run.device=cuda");
            arg(&j->c, "--memory-plan");
            arg(&j->c, p->smoke ? "cpu" : "cuda");
            check_start(j, k % CHECK_PARALLEL);
            k++;
        }
    }
    for (int i = k > CHECK_PARALLEL ? k - CHECK_PARALLEL : 0; i < k; i++) bad |= check_finish(&jobs[i % CHECK_PARALLEL]);
    return bad;
}

/* ---- the table ---- */

/* train.epoch_size from a run's config.ini ([train] epoch_size = N), or -1. */
static double epoch_size_of(const char *dir)
{
    char path[PATH_MAX], value[64];
    join(path, sizeof path, dir, "config.ini");
    return ini_value(path, "train", "epoch_size", value, sizeof value) ? -1 : strtod(value, NULL);
}

/* The eval records of a history, the last of each step kept (a resume redoes the steps after
 * its checkpoint), in order. Returns their count; idx holds their indices. */
static int kept_evals(const run_curves *c, int *idx)
{
    int n = 0;
    for (int e = 0; e < c->neval; e++) {
        int later = 0;
        for (int f = e + 1; f < c->neval && !later; f++) later = c->eval[f].step == c->eval[e].step;
        if (!later) idx[n++] = e;
    }
    return n;
}

static int tolerance_index(const run_curves *c, double tol)
{
    for (int t = 0; t < c->ntol; t++)
        if (fabs(strtod(c->tol[t], NULL) - tol) < 1e-9 * (1 + tol)) return t;
    return -1;
}

/* The text of a cell's measurement into out. */
static void measure_cell(const plan *p, const cell_def *cell, char *out, size_t cap)
{
    char dir[PATH_MAX], path[PATH_MAX];
    run_path(p, cell->run, dir, sizeof dir);
    run_status s = run_dir_status(dir);
    int from_test = cell->test >= 0;
    if (from_test && s.state != STATE_COMPLETE) {
        /* Its best.h5 is not the trained model yet: no evaluation to read. */
        const char *what = s.state == STATE_MISSING ? "not run" : s.state == STATE_BUSY ? "training" : "stopped";
        if (s.state != STATE_MISSING && s.last_step > 0) snprintf(out, cap, "%s at step %ld/%ld", what, s.step, s.last_step);
        else snprintf(out, cap, "%s", what);
        return;
    }
    if (!from_test && s.state == STATE_MISSING) {
        snprintf(out, cap, "not run");
        return;
    }
    char where[PATH_MAX];
    if (from_test) test_path(p, cell->test, where, sizeof where);
    else snprintf(where, sizeof where, "%s", dir);
    join(path, sizeof path, where, "metrics.jsonl");
    run_curves c;
    char err[512];
    int bad = cell->ood ? curves_read_file_ood(path, cell->ood, &c, err, sizeof err)
                        : curves_read_file(path, &c, err, sizeof err);
    if (bad) {
        snprintf(out, cap, "%s", from_test ? "not evaluated" : "unreadable metrics");
        return;
    }
    int *idx = lawt_malloc(((size_t)c.neval + 1) * sizeof *idx);
    int n = kept_evals(&c, idx), t = tolerance_index(&c, cell->tolerance);
    double epoch = epoch_size_of(dir);
    /* until: the evaluations of the first `until` epochs only; the run is as good as complete
     * for this cell once it has gone past them. */
    int past_until = 0;
    if (cell->until > 0 && epoch > 0) {
        int kept = 0;
        for (int i = 0; i < n; i++)
            if ((double)c.eval[idx[i]].examples <= cell->until * epoch + 0.5) idx[kept++] = idx[i];
            else past_until = 1;
        n = kept;
    }
    char progress[64] = "";
    if (!from_test && s.state != STATE_COMPLETE && !past_until) {
        const char *what = s.state == STATE_BUSY ? "training" : "stopped";
        if (s.last_step > 0) snprintf(progress, sizeof progress, "%s at step %ld/%ld", what, s.step, s.last_step);
        else snprintf(progress, sizeof progress, "%s", what);
    }
    if (cell->until > 0 && epoch <= 0) {
        snprintf(out, cap, "no epoch_size in config.ini");
    } else if (n == 0) {
        if (progress[0]) snprintf(out, cap, "%s", progress);
        else if (from_test) snprintf(out, cap, "not evaluated");
        else if (cell->ood) snprintf(out, cap, "no evaluation of ood %s", cell->ood);
        else snprintf(out, cap, "no evaluation");
    } else if (t < 0) {
        snprintf(out, cap, "no %g%% tolerance", cell->tolerance);
    } else if (cell->measure == MEASURE_FINAL || cell->measure == MEASURE_BEST) {
        /* A run that has not finished has no final (or best) value yet. */
        if (progress[0]) {
            snprintf(out, cap, "%s", progress);
        } else {
            double v = NAN;
            for (int i = 0; i < n; i++) {
                double x = c.eval[idx[i]].acc[cell->norm][t];
                if (cell->measure == MEASURE_FINAL) v = x;
                else if (!isnan(x) && (isnan(v) || x > v)) v = x;
            }
            if (isnan(v)) snprintf(out, cap, "no %s accuracy", norm_name(cell->norm));
            else snprintf(out, cap, "%.2f", v);
        }
    } else {
        long examples = -1;
        for (int i = 0; i < n && examples < 0; i++)
            if (c.eval[idx[i]].acc[cell->norm][t] >= cell->reach) examples = c.eval[idx[i]].examples;
        if (examples < 0 && progress[0])
            snprintf(out, cap, "not yet, %s", progress);
        else if (examples < 0)
            snprintf(out, cap, "never");
        else if (cell->measure == MEASURE_EXAMPLES_TO)
            snprintf(out, cap, "%.3gM", (double)examples / 1e6);
        else if (epoch > 0)
            snprintf(out, cap, "%.3g", (double)examples / epoch);
        else
            snprintf(out, cap, "no epoch_size in config.ini");
    }
    free(idx);
    curves_free(&c);
}

static void put_cell_text(const char *s)
{
    for (; *s; s++)
        if (*s == '|') fputs("\\|", stdout);
        else fputc(*s, stdout);
}

static void print_table(const plan *p)
{
    const grid *g = &p->g;
    printf("## %s%s\n\n", g->table.value[KEY_TITLE], p->smoke ? " (smoke)" : "");
    printf("Each cell: measured (published). Runs: `%s`, grid `%s`.\n\n", p->runs_dir, g->path);
    printf("| ");
    put_cell_text(g->table.value[KEY_CORNER]);
    printf(" |");
    for (int j = 0; j < g->ncols; j++) {
        putchar(' ');
        put_cell_text(g->cols[j].value[KEY_LABEL][0] ? g->cols[j].value[KEY_LABEL] : g->cols[j].id);
        printf(" |");
    }
    printf("\n|---|");
    for (int j = 0; j < g->ncols; j++) printf("---|");
    putchar('\n');
    for (int i = 0; i < g->nrows; i++) {
        const section *row = &g->rows[i];
        printf("| ");
        put_cell_text(row->value[KEY_LABEL][0] ? row->value[KEY_LABEL] : row->id);
        printf(" |");
        for (int j = 0; j < g->ncols; j++) {
            char text[256] = "";
            if (p->cells[i][j].run >= 0) measure_cell(p, &p->cells[i][j], text, sizeof text);
            putchar(' ');
            put_cell_text(text);
            if (row->npublished && strcmp(row->published[j], "-") != 0) {
                printf(" (");
                put_cell_text(row->published[j]);
                putchar(')');
            }
            printf(" |");
        }
        putchar('\n');
    }
    int count[4] = {0};
    for (int r = 0; r < p->nruns; r++) {
        char dir[PATH_MAX];
        run_path(p, r, dir, sizeof dir);
        count[run_dir_status(dir).state]++;
    }
    printf("\nRuns: %d complete, %d training now, %d stopped or failed, %d not run.\n",
           count[STATE_COMPLETE], count[STATE_BUSY], count[STATE_INCOMPLETE], count[STATE_MISSING]);
    for (int l = 0; l < g->table.nlines[KEY_NOTE]; l++) printf("\n%s\n", g->table.lines[KEY_NOTE][l]);
}

static void print_format_help(void)
{
    printf("A grid file is INI: [table], then [row ID] and [column ID] sections in the order of\n"
           "the paper's table, and [run ID] sections for runs that are no cell (a base run that\n"
           "others start from). IDs name the run directories. A cell (row x column) trains the\n"
           "run made of the table's, the row's and the column's keys (config, set, init_from),\n"
           "named by the ids of the row and column that give such keys (\"base\" when neither\n"
           "does): cells that name the same run share it; a row with a runs list names each\n"
           "cell's run instead. With test lines, the cell evaluates that run's best.h5 on other\n"
           "data (lawt_dist --evaluate best.h5 --set ...); with ood, it reads the run's own\n"
           "evaluations of an out-of-distribution set (eval.ood). Single keys (measure, norm,\n"
           "tolerance, reach, ood, config) come from the column, else the row,\n"
           "else the table; a row and a column that both give one is an error. ';' or '#'\n"
           "starts a comment line, ' ;' a comment at the end of a line.\n\nkeys:\n");
    for (int k = 0; k < KEY_COUNT; k++) {
        char where[64] = "";
        for (int w = IN_TABLE; w <= IN_RUN; w <<= 1)
            if (KEYS[k].where & w) {
                size_t n = strlen(where);
                snprintf(where + n, sizeof where - n, "%s%s", n ? " " : "", where_name(w));
            }
        printf("  %-10s %s\n  %-10s in %s\n", KEYS[k].name, KEYS[k].help, "", where);
    }
    printf("\nmeasures:\n");
    for (int m = 0; m < MEASURE_TABLE.count; m++)
        printf("  %-12s %s\n", MEASURE_TABLE.entries[m].name, MEASURE_TABLE.entries[m].help);
}

/* lawt_dist beside this program: in the build tree (build/tools -> build/trainer), or installed
 * (PREFIX/bin); else the one on PATH. */
static const char *find_dist(char *buf, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            const char *tries[] = {"../trainer/lawt_dist", "lawt_dist"};
            for (int i = 0; i < 2; i++) {
                concat(buf, cap, exe, "/", tries[i]);
                if (access(buf, X_OK) == 0) return buf;
            }
        }
    }
    return "lawt_dist";
}

int main(int argc, char **argv)
{
    const char *grid_arg = NULL, *runs = NULL, *launcher = NULL, *dist = NULL;
    int mode_plan = 0, mode_run = 0, mode_slurm = 0, mode_check = 0, smoke = 0, only = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        } else if (strcmp(a, "--help-format") == 0) {
            print_format_help();
            return 0;
        } else if (strcmp(a, "--plan") == 0) mode_plan = 1;
        else if (strcmp(a, "--run") == 0) mode_run = 1;
        else if (strcmp(a, "--slurm") == 0) mode_slurm = 1;
        else if (strcmp(a, "--check") == 0) mode_check = 1;
        else if (strcmp(a, "--smoke") == 0) smoke = 1;
        else if (strcmp(a, "--runs") == 0 && has_value) runs = argv[++i];
        else if (strcmp(a, "--launcher") == 0 && has_value) launcher = argv[++i];
        else if (strcmp(a, "--dist") == 0 && has_value) dist = argv[++i];
        else if (strcmp(a, "--only") == 0 && has_value) {
            char *end;
            long k = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || k < 0 || k >= MAX_RUNS) {
                fprintf(stderr, "lawt_table: --only %s: expected a task number (--plan lists them)\n", argv[i]);
                return 2;
            }
            only = (int)k;
        } else if (a[0] == '-') {
            fprintf(stderr, "lawt_table: %s: %s (see --help)\n",
                    has_value ? "unknown option" : "unknown option or missing value", a);
            return 2;
        } else if (grid_arg) {
            fprintf(stderr, "lawt_table: two grid files, %s and %s: one at a time\n", grid_arg, a);
            return 2;
        } else grid_arg = a;
    }
    if (mode_plan + mode_run + mode_slurm + mode_check > 1) {
        fprintf(stderr, "lawt_table: --plan, --run, --slurm and --check: one at a time\n");
        return 2;
    }
    if (!grid_arg) {
        fprintf(stderr, "lawt_table: no grid file given (see --help)\n");
        return 2;
    }
    if (!runs && !mode_check) {
        fprintf(stderr, "lawt_table: --runs DIR is needed: where the grid's runs are (or go)\n");
        return 2;
    }
    if ((only >= 0 || launcher) && !mode_run) {
        fprintf(stderr, "lawt_table: --only and --launcher go with --run\n");
        return 2;
    }
    plan *p = lawt_calloc(1, sizeof *p);
    char err[2048], dist_buf[PATH_MAX];
    p->runs_dir = runs ? runs : "runs";
    p->dist = dist ? dist : find_dist(dist_buf, sizeof dist_buf);
    p->smoke = smoke;
    if (grid_read(&p->g, grid_arg, err, sizeof err)) {
        fprintf(stderr, "lawt_table: %s\n", err);
        free(p);
        return 2;
    }
    int status = 0;
    if (plan_build(p, err, sizeof err)) {
        fprintf(stderr, "lawt_table: %s\n", err);
        status = 2;
    } else if (only >= p->ngroups) {
        fprintf(stderr, "lawt_table: --only %d: the grid has tasks 0 to %d\n", only, p->ngroups - 1);
        status = 2;
    } else if (mode_plan) {
        print_plan(p);
    } else if (mode_slurm) {
        status = print_slurm(p, argv[0], grid_arg);
    } else if (mode_check) {
        status = check_grid(p);
    } else {
        if (mode_run) {
            status = run_grid(p, only, launcher);
            putchar('\n');
        }
        if (status != EXIT_STOPPED) print_table(p);
    }
    grid_free(&p->g);
    free(p);
    return status;
}
