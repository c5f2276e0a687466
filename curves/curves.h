/* curves.h: a run's learning curves, read from its metrics history (metrics.jsonl, or the copy
 * a checkpoint stores): the summary table printed at the end of training, and plots drawn by
 * gnuplot (Debian package gnuplot-nox, terminals pngcairo and svg) like the paper's Figures 1-2.
 *
 * Only the "train" and "eval" records are read; records of other types, and keys this lawt
 * does not know, are skipped, so histories of older and newer runs read alike. */
#ifndef LAWT_CURVES_H
#define LAWT_CURVES_H

#include <stdio.h>

#include "eval/eval.h"

#define CURVES_GNUPLOT_PACKAGE "gnuplot-nox"

typedef struct {
    long step, examples;
    double loss, lr, time;
} curve_train_point;

typedef struct {
    long step, examples, size;
    double time, well_formed;
    double acc[LAWT_NORM_COUNT][EVAL_MAX_TOLERANCES]; /* percent; NaN where absent */
} curve_eval_point;

typedef struct {
    int ntol;
    char tol[EVAL_MAX_TOLERANCES][16]; /* the tolerances as the history spells them ("5") */
    curve_train_point *train;
    int ntrain;
    curve_eval_point *eval;
    int neval;
} run_curves;

/* Parses a history (one JSON object a line). Returns 0, or -1 with a message naming the line
 * when a train or eval record is malformed. */
int curves_parse(const char *jsonl, run_curves *c, char *err, size_t errcap);
/* Reads and parses a metrics.jsonl file (messages name the file). */
int curves_read_file(const char *path, run_curves *c, char *err, size_t errcap);
/* The same, with each eval record's accuracies, size and well_formed on the out-of-distribution
 * set `set` (its "ood":{"SET":{...}} object, eval.ood; SET as the records spell it, e.g.
 * "laplace" or "wigner@0.3") instead of the test set's; eval records without that set are
 * left out. */
int curves_parse_ood(const char *jsonl, const char *set, run_curves *c, char *err, size_t errcap);
int curves_read_file_ood(const char *path, const char *set, run_curves *c, char *err, size_t errcap);
void curves_free(run_curves *c);

/* The paper's sample size (Tables 7, 16, 17, 19): the examples seen at the first evaluation,
 * in the history's order, whose accuracy in `norm` at tolerance tol_index reached `percent`
 * (>=); -1 when none did. */
long curves_examples_to_reach(const run_curves *c, lawt_norm norm, int tol_index, double percent);
/* A markdown table of those in L1, one row per tolerance, at 95% and 99% (the paper's two);
 * "not reached" where no evaluation got there. */
void curves_print_sample_size(FILE *f, const run_curves *c);

/* The end-of-run table: best and final accuracy per tolerance and norm, the examples seen when
 * L1 first reached 95% and 99% ("-": never), examples seen, wall time and examples/s, written
 * to f with every line prefixed by prefix. */
void curves_print_summary(FILE *f, const char *prefix, const run_curves *c, long examples,
                          double wall_seconds);

typedef struct {
    const char *output; /* the image file */
    int svg;            /* 1: SVG, 0: PNG */
    int width, height;  /* pixels */
    int norms[LAWT_NORM_COUNT]; /* which norms' accuracies to draw */
} curves_plot_options;

/* 1 when gnuplot can be run (found on PATH). */
int curves_gnuplot_available(void);

/* Draws loss (left) and accuracy at every tolerance (right) against examples seen, the runs
 * overlaid, named by names[i]. Returns 0, or -1 with a message (a missing gnuplot names the
 * package to install). */
int curves_plot(const run_curves *runs, const char *const *names, int nruns,
                const curves_plot_options *opt, char *err, size_t errcap);

/* The end of a training run (rank 0): the summary table on stdout and into log (may be NULL)
 * and, when run_dir is set and gnuplot is available, run_dir/curves.png. Never fails the run:
 * a problem becomes a warning line. */
void curves_end_of_run(const char *metrics_jsonl, long examples, double wall_seconds,
                       const char *run_dir, FILE *log);

#endif
