/* evaluate.c: evaluation on the test stream. Each evaluation takes a fresh slice of the
 * stream, shards it over the ranks and sums the tallies, so the accuracies do not depend on
 * the number of ranks; it writes one eval line and metrics record, with the test loss (the
 * teacher-forced cross-entropy of the same examples, as a training step computes it), the
 * accuracy by problem size when the data has several sizes and by task under joint training,
 * and the same scores on each out-of-distribution set of eval.ood (its own stream, a fresh
 * slice each time too). Evaluating a checkpoint (--evaluate) also reports the failure analysis
 * of sections 4.5-4.6 (accuracy by the condition number of the input; for inversion and
 * eigenvectors the checks beside the paper's and the failure predictors) and can write every
 * example to a file (--dump). The buffers of one decoding batch live in run_state. */
#include "trainer/train_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encoding/encoding.h"

/* Failure analysis (section 4.5): accuracy by the condition number of the input matrix, in
 * decades [1, 10), [10, 100), [100, 1000), [1000, inf) (singular inputs in the last). */
enum { COND_BUCKETS = 4 };

static int condition_bucket(const lawt_matrix *input)
{
    double c = eval_condition_number(input);
    int b = 0;
    while (b < COND_BUCKETS - 1 && !(c < pow(10.0, b + 1))) b++;
    return b;
}

/* The failure predictors of sections 4.5 and 4.6 (--evaluate): the condition number of the
 * predicted Q for eigenvectors (the paper: 98% of correct predictions below 1.035, 98% of
 * failures above 1.04), that of the input for inversion (98% of each side of 51.5). Examples
 * are counted in the buckets these edges make, by pass or fail at the first tolerance (L1),
 * from which each edge's share of correct predictions below it and of failures at or above it
 * follow. A malformed prediction is a failure whose Q has an infinite condition number. */
enum { PREDICTOR_EDGES = 8 };
static const double Q_CONDITION_EDGES[PREDICTOR_EDGES] = {1.01, 1.02,  1.03, 1.035,
                                                          1.04, 1.05,  1.1,  1.5};
static const double INPUT_CONDITION_EDGES[PREDICTOR_EDGES] = {10, 20, 30, 40, 51.5, 75, 100, 1000};

/* The checks beside the paper's of section 4.5-4.6 (--evaluate), on tallies of their own. */
#define SUB_CHECKS(X)                                                                       \
    X(SUB_INVERSE_DISTANCE, "inverse_distance", "|P - M^-1| / |M^-1| (section 4.6)")        \
    X(SUB_PREDICTED_EIGENVALUES, "predicted_eigenvalues",                                   \
      "the predicted eigenvalues D against the true ones (section 4.5)")                    \
    X(SUB_IMPLIED_EIGENVALUES, "implied_eigenvalues",                                       \
      "the eigenvalues the predicted Q implies, q^T M q / q^T q, against the true ones")
typedef enum { SUB_CHECKS(ENUM_VALUE) SUB_CHECK_COUNT } sub_check;
ENUM_TABLE_DEFINE(SUB_CHECK_TABLE, SUB_CHECKS);

/* The problem sizes of a data configuration, as groups: m in [rows_min, rows_max] and, for
 * rectangular data, n over the columns any task of it can draw (a square task's n is m). */
typedef struct {
    int rows_min, cols_min, ncols, count;
    int square; /* no dim2: one group per m */
} size_groups;

static size_groups size_groups_of(const datagen_config *d)
{
    size_groups g = {d->rows_min, d->rows_min, 1, 0, d->cols_max == 0};
    if (!g.square) {
        g.cols_min = d->cols_min < d->rows_min ? d->cols_min : d->rows_min;
        int hi = d->cols_max > d->rows_max ? d->cols_max : d->rows_max;
        g.ncols = hi - g.cols_min + 1;
    }
    g.count = (d->rows_max - d->rows_min + 1) * g.ncols;
    return g;
}

static int size_group(const size_groups *g, lawt_task task, const lawt_matrix *input)
{
    int m, n;
    if (task_problem_of_input(task, input->rows, input->cols, &m, &n)) return 0;
    return (m - g->rows_min) * g->ncols + (g->square ? 0 : n - g->cols_min);
}

static void size_label(const size_groups *g, int group, char *buf, size_t cap)
{
    int m = g->rows_min + group / g->ncols, n = g->cols_min + group % g->ncols;
    if (g->square) snprintf(buf, cap, "%d", m);
    else snprintf(buf, cap, "%dx%d", m, n);
}

/* The tallies of one evaluation set; every count is summed over the ranks (reduce_set). */
typedef struct {
    eval_tally all;
    double loss_sum; /* teacher-forced cross-entropy, as training computes it */
    long loss_tokens;
    size_groups sizes;
    eval_tally *by_size; /* sizes.count of them */
    eval_tally by_task[LAWT_TASK_COUNT];
    eval_tally by_cond[COND_BUCKETS]; /* --evaluate only */
    long not_square;                  /* inputs that are not square (no condition number) */
    /* --evaluate's failure analysis, test set only: */
    long predictor[PREDICTOR_EDGES + 1][2]; /* examples, and passes, by bucket */
    eval_tally sub[SUB_CHECK_COUNT];
} set_tally;

static void set_init(set_tally *s, const trainer_config *cfg, const datagen_config *data)
{
    memset(s, 0, sizeof *s);
    eval_tally_init(&s->all, cfg->tol, cfg->ntol);
    s->sizes = size_groups_of(data);
    s->by_size = lawt_malloc((size_t)s->sizes.count * sizeof *s->by_size);
    for (int g = 0; g < s->sizes.count; g++) eval_tally_init(&s->by_size[g], cfg->tol, cfg->ntol);
    for (int t = 0; t < LAWT_TASK_COUNT; t++) eval_tally_init(&s->by_task[t], cfg->tol, cfg->ntol);
    for (int b = 0; b < COND_BUCKETS; b++) eval_tally_init(&s->by_cond[b], cfg->tol, cfg->ntol);
    for (int c = 0; c < SUB_CHECK_COUNT; c++) eval_tally_init(&s->sub[c], cfg->tol, cfg->ntol);
}

/* The counts of a tally, as the longs an all-reduce sums (err_sum is not reported). */
enum { TALLY_LONGS = 2 + LAWT_NORM_COUNT * EVAL_MAX_TOLERANCES };

static long *pack_tally(const eval_tally *t, long *out)
{
    out[0] = t->count;
    out[1] = t->well_formed;
    memcpy(out + 2, t->pass, sizeof t->pass);
    return out + TALLY_LONGS;
}

static const long *unpack_tally(eval_tally *t, const long *in)
{
    t->count = in[0];
    t->well_formed = in[1];
    memcpy(t->pass, in + 2, sizeof t->pass);
    return in + TALLY_LONGS;
}

/* Counters are exact sums, so the accuracies do not depend on the number of ranks. */
static void reduce_set(run_state *r, set_tally *s)
{
    int tallies = 1 + s->sizes.count + LAWT_TASK_COUNT + COND_BUCKETS + SUB_CHECK_COUNT;
    size_t n = (size_t)tallies * TALLY_LONGS + 2 + sizeof s->predictor / sizeof(long);
    long *counts = lawt_malloc(n * sizeof *counts), *p = counts;
    p = pack_tally(&s->all, p);
    for (int g = 0; g < s->sizes.count; g++) p = pack_tally(&s->by_size[g], p);
    for (int t = 0; t < LAWT_TASK_COUNT; t++) p = pack_tally(&s->by_task[t], p);
    for (int b = 0; b < COND_BUCKETS; b++) p = pack_tally(&s->by_cond[b], p);
    for (int c = 0; c < SUB_CHECK_COUNT; c++) p = pack_tally(&s->sub[c], p);
    p[0] = s->loss_tokens;
    p[1] = s->not_square;
    memcpy(p + 2, s->predictor, sizeof s->predictor);
    comm_allreduce_sum_long(r->comm, counts, n);
    const long *q = unpack_tally(&s->all, counts);
    for (int g = 0; g < s->sizes.count; g++) q = unpack_tally(&s->by_size[g], q);
    for (int t = 0; t < LAWT_TASK_COUNT; t++) q = unpack_tally(&s->by_task[t], q);
    for (int b = 0; b < COND_BUCKETS; b++) q = unpack_tally(&s->by_cond[b], q);
    for (int c = 0; c < SUB_CHECK_COUNT; c++) q = unpack_tally(&s->sub[c], q);
    s->loss_tokens = q[0];
    s->not_square = q[1];
    memcpy(s->predictor, q + 2, sizeof s->predictor);
    free(counts);
    comm_allreduce_sum_double(r->comm, &s->loss_sum, 1);
}

static void predictor_add(set_tally *s, const double *edges, double value, int pass)
{
    int b = 0;
    while (b < PREDICTOR_EDGES && !(value < edges[b])) b++;
    s->predictor[b][0]++;
    s->predictor[b][1] += pass;
}

/* --dump: one JSON line an example, rank 0 of one (lawt_dist refuses --dump under MPI). A
 * failed write is named with the file and errno; the evaluation goes on and the run ends
 * with TRAINER_EXIT_WRITE_FAILED. */
static void dump_example(run_state *r, uint64_t index, lawt_task task, const lawt_matrix *in,
                         const lawt_matrix *target, const lawt_matrix *pred)
{
    size_t cap = eval_example_json_size(in, target) + 64;
    char *line = lawt_malloc(cap);
    lawt_text t = {line, cap, 0};
    lawt_appendf(&t, "{\"index\":%llu,", (unsigned long long)index);
    eval_example_json(&t, task, in, target, pred, r->cfg->tol, r->cfg->ntol);
    lawt_appendf(&t, "}\n");
    if (t.len + 1 >= cap)
        lawt_die("--dump: example %llu outgrew its %zu bytes", (unsigned long long)index, cap);
    if (lawt_write_all(r->dump_fd, line, t.len)) {
        int e = errno;
        fprintf(stderr, "lawt: error: writing %s failed: %s (errno %d)\n", r->opt->dump_path,
                strerror(e), e);
        close(r->dump_fd);
        r->dump_fd = -1;
        r->write_failed = 1;
    }
    free(line);
}

/* The failure analysis of one example of the test set (--evaluate). */
static void analyse_example(run_state *r, set_tally *s, lawt_task task, const lawt_matrix *in,
                            const lawt_matrix *target, const lawt_matrix *pred)
{
    double err[LAWT_NORM_COUNT];
    int pass = pred && eval_relative_error(task, in, target, pred, err) == 0 &&
               eval_passes(task, err[NORM_L1], r->cfg->tol[0]);
    int one_task = r->cfg->data.ntasks == 1; /* a predictor's buckets hold one task */
    if (task == TASK_INVERSION) {
        if (one_task) predictor_add(s, INPUT_CONDITION_EDGES, eval_condition_number(in), pass);
        double d[LAWT_NORM_COUNT];
        int ok = pred && eval_direct_error(target, pred, d) == 0;
        eval_tally_add_error(&s->sub[SUB_INVERSE_DISTANCE], task, ok ? d : NULL);
    } else if (task == TASK_EIGENVECTORS) {
        if (one_task)
            predictor_add(s, Q_CONDITION_EDGES,
                          pred ? eval_eigenvectors_q_condition(pred) : INFINITY, pass);
        double predicted[LAWT_NORM_COUNT], implied[LAWT_NORM_COUNT];
        int ok = pred && eval_eigenvalue_errors(in, target, pred, predicted, implied) == 0;
        eval_tally_add_error(&s->sub[SUB_PREDICTED_EIGENVALUES], task, ok ? predicted : NULL);
        eval_tally_add_error(&s->sub[SUB_IMPLIED_EIGENVALUES], task, ok ? implied : NULL);
    }
}

/* Evaluates this rank's share of eval_size examples of `data`, numbers first_index + i of
 * `stream`, into s (this rank's counts: reduce_set sums them); analyse: the failure analysis
 * and the dump of --evaluate too. Returns 0, or -1 when a stop signal ended an evaluation of
 * a checkpoint (--evaluate) between two batches. */
static int evaluate_set(run_state *r, const datagen_config *data, datagen_stream stream,
                        uint64_t first_index, set_tally *s, int analyse)
{
    const trainer_config *cfg = r->cfg;
    long lo = cfg->eval_size * r->rank / r->ranks, hi = cfg->eval_size * (r->rank + 1) / r->ranks;
    /* Every rank runs as many batches as the largest shard needs, so that --evaluate, which
     * can be long, checks for a stop signal between batches the same number of times on all. */
    long largest = (cfg->eval_size + r->ranks - 1) / r->ranks;
    for (long first = lo; first < lo + largest; first += cfg->eval_batch) {
        if (r->opt->evaluate_path && first > lo && comm_any(r->comm, comm_stop_requested()))
            return -1;
        if (first >= hi) continue;
        int B = (int)(hi - first < cfg->eval_batch ? hi - first : cfg->eval_batch);
        for (int j = 0; j < B; j++)
            datagen_tokens(data, &r->vin, &r->vout, cfg->seed, stream,
                           first_index + (uint64_t)(first + j), r->src + (size_t)j * r->max_src,
                           &r->src_len[j], r->tgt + (size_t)j * r->max_tgt, &r->tgt_len[j],
                           &r->inputs[j], &r->targets[j], &r->tasks[j]);
        /* Sources are padded to the longest possible, not to the batch's longest, so that
         * an example's prediction does not depend on its batch companions (or rank count). */
        pad_rows(r->src, B, r->max_src, r->max_src, r->src_len);
        pad_rows(r->tgt, B, r->max_tgt, r->max_tgt, r->tgt_len);
        model_batch batch = {B, r->max_src, r->max_tgt, r->src, r->src_len, r->tgt, r->tgt_len};
        long tokens;
        s->loss_sum += trainer_loss_sum(r->model, r->local_batch, &batch, &tokens);
        s->loss_tokens += tokens;
        if (cfg->decoding == DECODING_BEAM)
            model_beam_decode(r->model, r->src, r->src_len, B, r->max_src, cfg->beam_size,
                              r->max_out, r->pred, r->pred_len);
        else
            model_greedy_decode(r->model, r->src, r->src_len, B, r->max_src, r->max_out, r->pred,
                                r->pred_len);
        for (int j = 0; j < B; j++) {
            lawt_matrix pred = {0, 0, r->pred_coeffs};
            decode_status status =
                datagen_decode_output(data, &r->vout, r->tasks[j], r->pred + (size_t)j * r->max_out,
                                      r->pred_len[j], &pred, (int)r->out_coeffs);
            const lawt_matrix *p = status == DECODE_OK ? &pred : NULL;
            const lawt_matrix *in = &r->inputs[j], *target = &r->targets[j];
            lawt_task task = r->tasks[j];
            eval_tally_add(&s->all, task, in, target, p);
            eval_tally_add(&s->by_size[size_group(&s->sizes, task, in)], task, in, target, p);
            eval_tally_add(&s->by_task[task], task, in, target, p);
            if (in->rows != in->cols) s->not_square++;
            else if (analyse)
                eval_tally_add(&s->by_cond[condition_bucket(in)], task, in, target, p);
            if (analyse) analyse_example(r, s, task, in, target, p);
            if (analyse && r->dump_fd >= 0)
                dump_example(r, first_index + (uint64_t)(first + j), task, in, target, p);
        }
    }
    return 0;
}

/* ,"acc":{...},"acc_l2":{...},"acc_linf":{...},"well_formed":W of a tally; the L1 accuracies
 * also on the text line. */
static void append_scores(const trainer_config *cfg, const eval_tally *t, lawt_text *js,
                          lawt_text *ln)
{
    static const char *const FIELDS[LAWT_NORM_COUNT] = {"acc", "acc_l2", "acc_linf"};
    for (int norm = 0; norm < LAWT_NORM_COUNT; norm++) {
        lawt_appendf(js, ",\"%s\":{", FIELDS[norm]);
        for (int i = 0; i < cfg->ntol; i++) {
            double acc = eval_tally_accuracy(t, (lawt_norm)norm, i);
            lawt_appendf(js, "%s\"%g\":%.2f", i ? "," : "", 100.0 * cfg->tol[i], acc);
            if (norm == NORM_L1 && ln) lawt_appendf(ln, " %g%%: %.2f", 100.0 * cfg->tol[i], acc);
        }
        lawt_appendf(js, "}");
    }
    double well_formed = t->count ? 100.0 * (double)t->well_formed / (double)t->count : 0.0;
    lawt_appendf(js, ",\"well_formed\":%.2f", well_formed);
    if (ln) lawt_appendf(ln, " | well-formed %.2f%%", well_formed);
}

static double test_loss(const set_tally *s)
{
    return s->loss_sum / (double)(s->loss_tokens > 0 ? s->loss_tokens : 1);
}

/* ,"NAME":{"GROUP":{"size":K,"acc":...},...} for the groups that have examples, and a line
 * of their L1 accuracy at the first tolerance. */
static void append_groups(run_state *r, const char *name, const char *what,
                          const eval_tally *tallies, int count,
                          void (*label)(const void *, int, char *, size_t), const void *ctx,
                          lawt_text *js)
{
    const trainer_config *cfg = r->cfg;
    char line[2048];
    lawt_text ln = {line, sizeof line, 0};
    lawt_appendf(&ln, "%-6s L1 accuracy at %g%% by %s:", name, 100.0 * cfg->tol[0], what);
    lawt_appendf(js, ",\"by_%s\":{", name);
    int shown = 0;
    for (int g = 0; g < count; g++) {
        if (tallies[g].count == 0) continue;
        char key[64];
        label(ctx, g, key, sizeof key);
        lawt_appendf(js, "%s\"%s\":{\"size\":%ld", shown ? "," : "", key, tallies[g].count);
        append_scores(cfg, &tallies[g], js, NULL);
        lawt_appendf(js, "}");
        lawt_appendf(&ln, "%s %s: %.2f%% of %ld", shown ? " |" : "", key,
                     eval_tally_accuracy(&tallies[g], NORM_L1, 0), tallies[g].count);
        shown++;
    }
    lawt_appendf(js, "}");
    say(r, "%s", line);
}

static void size_label_of(const void *ctx, int group, char *buf, size_t cap)
{
    size_label(ctx, group, buf, cap);
}

static void task_label_of(const void *ctx, int group, char *buf, size_t cap)
{
    (void)ctx;
    snprintf(buf, cap, "%s", task_name((lawt_task)group));
}

/* One line and one metrics record of the tallies by condition number (all ranks' sums). */
static void report_by_condition(run_state *r, const eval_tally *by_cond)
{
    const trainer_config *cfg = r->cfg;
    static const char *const NAMES[COND_BUCKETS] = {"<10", "10-100", "100-1000", ">=1000"};
    char json[1024], line[1024];
    lawt_text js = {json, sizeof json, 0}, ln = {line, sizeof line, 0};
    lawt_appendf(&js, "{\"type\":\"by_condition\",\"tolerance\":%g,\"buckets\":[",
                 100.0 * cfg->tol[0]);
    lawt_appendf(&ln, "cond   L1 accuracy at %g%% (well-formed) by condition number of the input:",
                 100.0 * cfg->tol[0]);
    for (int b = 0; b < COND_BUCKETS; b++) {
        const eval_tally *t = &by_cond[b];
        double total = t->count ? (double)t->count : 1.0;
        double acc = 100.0 * (double)t->pass[NORM_L1][0] / total;
        double wf = 100.0 * (double)t->well_formed / total;
        lawt_appendf(&js, "%s{\"cond\":\"%s\",\"count\":%ld,\"acc\":%.2f,\"well_formed\":%.2f}",
                     b ? "," : "", NAMES[b], t->count, acc, wf);
        lawt_appendf(&ln, "%s %s: %.2f%% (%.2f%%) of %ld", b ? " |" : "", NAMES[b], acc, wf,
                     t->count);
    }
    lawt_appendf(&js, "]}");
    say(r, "%s", line);
    record_metrics(r, json);
}

/* The first index of out-of-distribution set `name` at test index `index`: each set has its
 * own range of the OOD stream, from a hash of its name (config_finish keeps the test index
 * below 2^44), so a set's examples do not depend on the other sets listed. */
static uint64_t ood_index(const char *name, uint64_t index)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return ((uint64_t)(h & 0xFFFFFu) << 44) | index;
}

/* The failure predictor's record and lines (inversion, eigenvectors), and the sub-checks'. */
static void report_failure_analysis(run_state *r, const set_tally *s)
{
    const trainer_config *cfg = r->cfg;
    const double *edges = NULL;
    const char *predictor = NULL, *of = NULL;
    for (int c = 0; c < SUB_CHECK_COUNT; c++) {
        const eval_tally *t = &s->sub[c];
        if (t->count == 0) continue;
        char json[1024], line[1024];
        lawt_text js = {json, sizeof json, 0}, ln = {line, sizeof line, 0};
        lawt_appendf(&js, "{\"type\":\"sub_accuracy\",\"check\":\"%s\",\"size\":%ld",
                     enum_name(&SUB_CHECK_TABLE, c), t->count);
        lawt_appendf(&ln, "sub    %s: L1 accuracy", SUB_CHECK_TABLE.entries[c].help);
        append_scores(cfg, t, &js, &ln);
        lawt_appendf(&js, "}");
        say(r, "%s", line);
        record_metrics(r, json);
        if (c == SUB_INVERSE_DISTANCE) {
            edges = INPUT_CONDITION_EDGES;
            predictor = "input_condition";
            of = "the input";
        } else {
            edges = Q_CONDITION_EDGES;
            predictor = "q_condition";
            of = "the predicted Q";
        }
    }
    if (!edges || r->cfg->data.ntasks > 1) return;
    long correct = 0, failures = 0;
    for (int b = 0; b <= PREDICTOR_EDGES; b++) {
        correct += s->predictor[b][1];
        failures += s->predictor[b][0] - s->predictor[b][1];
    }
    char json[4096], line[2048];
    lawt_text js = {json, sizeof json, 0}, ln = {line, sizeof line, 0};
    lawt_appendf(&js, "{\"type\":\"failure_predictor\",\"predictor\":\"%s\",\"tolerance\":%g,"
                 "\"correct\":%ld,\"failures\":%ld,\"buckets\":[",
                 predictor, 100.0 * cfg->tol[0], correct, failures);
    lawt_appendf(&ln, "pred   L1 accuracy at %g%% by condition number of %s:", 100.0 * cfg->tol[0],
                 of);
    for (int b = 0; b <= PREDICTOR_EDGES; b++) {
        long n = s->predictor[b][0];
        double acc = n ? 100.0 * (double)s->predictor[b][1] / (double)n : 0.0;
        if (b < PREDICTOR_EDGES)
            lawt_appendf(&js, "%s{\"below\":%g,\"count\":%ld,\"acc\":%.2f}", b ? "," : "",
                         edges[b], n, acc);
        else
            lawt_appendf(&js, ",{\"from\":%g,\"count\":%ld,\"acc\":%.2f}", edges[b - 1], n, acc);
        if (b == 0) lawt_appendf(&ln, " <%g: %.2f%% of %ld", edges[b], acc, n);
        else if (b < PREDICTOR_EDGES)
            lawt_appendf(&ln, " | %g-%g: %.2f%% of %ld", edges[b - 1], edges[b], acc, n);
        else lawt_appendf(&ln, " | >=%g: %.2f%% of %ld", edges[b - 1], acc, n);
    }
    say(r, "%s", line);
    ln = (lawt_text){line, sizeof line, 0};
    lawt_appendf(&js, "],\"thresholds\":[");
    lawt_appendf(&ln, "pred   as a failure predictor, share of the correct below and of the failures "
                 "at or above:");
    long correct_below = 0, failures_below = 0;
    for (int b = 0; b < PREDICTOR_EDGES; b++) {
        correct_below += s->predictor[b][1];
        failures_below += s->predictor[b][0] - s->predictor[b][1];
        double c = correct ? 100.0 * (double)correct_below / (double)correct : 0.0;
        double f = failures ? 100.0 * (double)(failures - failures_below) / (double)failures : 0.0;
        lawt_appendf(&js, "%s{\"at\":%g,\"correct_below\":%.2f,\"failures_at_or_above\":%.2f}",
                     b ? "," : "", edges[b], c, f);
        lawt_appendf(&ln, "%s %g: %.2f%% / %.2f%%", b ? " |" : "", edges[b], c, f);
    }
    lawt_appendf(&js, "]}");
    say(r, "%s", line);
    record_metrics(r, json);
}

/* The eval line and metrics record of the summed tallies (test: the test stream's, then
 * cfg->nood out-of-distribution sets), and the analysis by condition number of --evaluate. */
static void report(run_state *r, const set_tally *test, const set_tally *ood, double t0)
{
    const trainer_config *cfg = r->cfg;
    /* Fractional when max_steps or a signal ended the run inside an epoch. */
    double epoch = (double)r->step / (double)r->steps_per_epoch;
    size_t cap = 16384 + (size_t)(cfg->nood + test->sizes.count + LAWT_TASK_COUNT) * 512;
    char *json = lawt_malloc(cap), line[2048];
    lawt_text js = {json, cap, 0}, ln = {line, sizeof line, 0};
    lawt_appendf(&js, "{\"type\":\"eval\",\"epoch\":%.6g,\"step\":%ld,\"examples\":%ld,"
                 "\"time\":%.3f,\"size\":%ld",
                 epoch, r->step, r->step * (long)cfg->batch_size, wall_seconds(r), test->all.count);
    if (r->opt->evaluate_path)
        lawt_appendf(&ln, "eval   %s, %ld test examples: L1 accuracy", r->opt->evaluate_path,
                     test->all.count);
    else
        lawt_appendf(&ln, "eval   epoch %.6g, %ld test examples: L1 accuracy", epoch,
                     test->all.count);
    append_scores(cfg, &test->all, &js, &ln);
    lawt_appendf(&js, ",\"test_loss\":%.9g", test_loss(test));
    lawt_appendf(&ln, " | test loss %.4f | %.1f s", test_loss(test), lawt_now() - t0);
    say(r, "%s", line);
    if (test->sizes.count > 1)
        append_groups(r, "size", "problem size", test->by_size, test->sizes.count,
                      size_label_of, &test->sizes, &js);
    if (cfg->data.ntasks > 1)
        append_groups(r, "task", "task", test->by_task, LAWT_TASK_COUNT, task_label_of, NULL,
                      &js);
    if (cfg->nood) lawt_appendf(&js, ",\"ood\":{");
    for (int k = 0; k < cfg->nood; k++) {
        const set_tally *s = &ood[k];
        ln = (lawt_text){line, sizeof line, 0};
        lawt_appendf(&ln, "ood    %s, %ld examples: L1 accuracy", cfg->ood_name[k], s->all.count);
        lawt_appendf(&js, "%s\"%s\":{\"size\":%ld", k ? "," : "", cfg->ood_name[k],
                     s->all.count);
        append_scores(cfg, &s->all, &js, &ln);
        lawt_appendf(&js, ",\"test_loss\":%.9g}", test_loss(s));
        lawt_appendf(&ln, " | test loss %.4f", test_loss(s));
        say(r, "%s", line);
    }
    if (cfg->nood) lawt_appendf(&js, "}");
    lawt_appendf(&js, "}");
    if (js.len + 1 >= cap) lawt_die("evaluate: the eval record outgrew its %zu bytes", cap);
    record_metrics(r, json);
    free(json);
    if (r->opt->evaluate_path) {
        if (test->not_square == 0) report_by_condition(r, test->by_cond);
        else say(r, "cond   inputs are not all square: no analysis by condition number");
        report_failure_analysis(r, test);
    }
}

/* Evaluates on the next eval_size examples of the test stream, and of each out-of-distribution
 * set; returns the L1 accuracy at the first tolerance (percent) on the test stream, which
 * ranks checkpoints. Evaluating a checkpoint (--evaluate) also reports accuracy by the
 * condition number of square inputs, and ends early, reporting nothing, on a stop signal
 * (r->evaluation_stopped). */
double evaluate(run_state *r)
{
    const trainer_config *cfg = r->cfg;
    double t0 = lawt_now();
    int nsets = 1 + cfg->nood;
    set_tally *sets = lawt_malloc((size_t)nsets * sizeof *sets);
    for (int k = 0; k < nsets; k++) set_init(&sets[k], cfg, k ? &cfg->ood_data[k - 1] : &cfg->data);
    int stopped = evaluate_set(r, &cfg->data, STREAM_TEST, r->test_index, &sets[0],
                               r->opt->evaluate_path != NULL);
    for (int k = 1; k < nsets && !stopped; k++)
        stopped = evaluate_set(r, &cfg->ood_data[k - 1], STREAM_OOD,
                               ood_index(cfg->ood_name[k - 1], r->test_index), &sets[k], 0);
    double accuracy = -1.0;
    if (stopped) {
        r->evaluation_stopped = 1;
    } else {
        for (int k = 0; k < nsets; k++) reduce_set(r, &sets[k]);
        r->test_index += (uint64_t)cfg->eval_size;
        report(r, &sets[0], sets + 1, t0);
        accuracy = eval_tally_accuracy(&sets[0].all, NORM_L1, 0);
    }
    for (int k = 0; k < nsets; k++) free(sets[k].by_size);
    free(sets);
    return accuracy;
}

/* The buffers of one evaluation batch: eval_batch rows of problems, tokens and predictions. */
void allocate_eval_buffers(run_state *r)
{
    const trainer_config *cfg = r->cfg;
    int rows = cfg->eval_batch;
    r->src = lawt_malloc((size_t)rows * r->max_src * sizeof(int));
    r->tgt = lawt_malloc((size_t)rows * r->max_tgt * sizeof(int));
    r->src_len = lawt_malloc((size_t)rows * sizeof(int));
    r->tgt_len = lawt_malloc((size_t)rows * sizeof(int));
    size_t in_coeffs = datagen_max_input_coeffs(&cfg->data);
    r->out_coeffs = datagen_max_output_coeffs(&cfg->data);
    r->inputs = lawt_malloc((size_t)cfg->eval_batch * sizeof *r->inputs);
    r->targets = lawt_malloc((size_t)cfg->eval_batch * sizeof *r->targets);
    double *in = lawt_malloc((size_t)cfg->eval_batch * in_coeffs * sizeof(double));
    double *out = lawt_malloc((size_t)cfg->eval_batch * r->out_coeffs * sizeof(double));
    for (int j = 0; j < cfg->eval_batch; j++) {
        r->inputs[j] = (lawt_matrix){0, 0, in + (size_t)j * in_coeffs};
        r->targets[j] = (lawt_matrix){0, 0, out + (size_t)j * r->out_coeffs};
    }
    r->tasks = lawt_malloc((size_t)cfg->eval_batch * sizeof *r->tasks);
    r->pred_coeffs = lawt_malloc(r->out_coeffs * sizeof(double));
    r->pred = lawt_malloc((size_t)cfg->eval_batch * r->max_out * sizeof(int));
    r->pred_len = lawt_malloc((size_t)cfg->eval_batch * sizeof(int));
}

void free_eval_buffers(run_state *r)
{
    free(r->src);
    free(r->tgt);
    free(r->src_len);
    free(r->tgt_len);
    free(r->inputs[0].a);
    free(r->targets[0].a);
    free(r->inputs);
    free(r->targets);
    free(r->tasks);
    free(r->pred_coeffs);
    free(r->pred);
    free(r->pred_len);
}
