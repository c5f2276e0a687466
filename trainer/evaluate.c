/* evaluate.c: evaluation on the test stream. Each evaluation takes a fresh slice of the
 * stream, shards it over the ranks and sums the tallies, so the accuracies do not depend on
 * the number of ranks; it writes one eval line and metrics record, with the test loss (the
 * teacher-forced cross-entropy of the same examples, as a training step computes it). Evaluating a checkpoint
 * (--evaluate) also reports accuracy by the condition number of the input (the failure
 * analysis of section 4.5). The buffers of one decoding batch live in run_state. */
#include "trainer/train_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* One line and one metrics record of the tallies by condition number (all ranks' sums). */
static void report_by_condition(run_state *r, eval_tally *by_cond)
{
    const trainer_config *cfg = r->cfg;
    long counts[COND_BUCKETS][3];
    for (int b = 0; b < COND_BUCKETS; b++) {
        counts[b][0] = by_cond[b].count;
        counts[b][1] = by_cond[b].well_formed;
        counts[b][2] = by_cond[b].pass[NORM_L1][0];
    }
    comm_allreduce_sum_long(r->comm, &counts[0][0], sizeof counts / sizeof counts[0][0]);
    static const char *const NAMES[COND_BUCKETS] = {"<10", "10-100", "100-1000", ">=1000"};
    char json[1024], line[1024];
    lawt_text js = {json, sizeof json, 0}, ln = {line, sizeof line, 0};
    lawt_appendf(&js, "{\"type\":\"by_condition\",\"tolerance\":%g,\"buckets\":[",
                 100.0 * cfg->tol[0]);
    lawt_appendf(&ln, "cond   L1 accuracy at %g%% (well-formed) by condition number of the input:",
                 100.0 * cfg->tol[0]);
    for (int b = 0; b < COND_BUCKETS; b++) {
        double total = counts[b][0] ? (double)counts[b][0] : 1.0;
        double acc = 100.0 * (double)counts[b][2] / total;
        double wf = 100.0 * (double)counts[b][1] / total;
        lawt_appendf(&js, "%s{\"cond\":\"%s\",\"count\":%ld,\"acc\":%.2f,\"well_formed\":%.2f}",
                     b ? "," : "", NAMES[b], counts[b][0], acc, wf);
        lawt_appendf(&ln, "%s %s: %.2f%% (%.2f%%) of %ld", b ? " |" : "", NAMES[b], acc, wf,
                     counts[b][0]);
    }
    lawt_appendf(&js, "]}");
    say(r, "%s", line);
    record_metrics(r, json);
}

/* Evaluates on the next eval_size examples of the test stream; returns the L1 accuracy at the
 * first tolerance (percent), which ranks checkpoints. Evaluating a checkpoint (--evaluate) also
 * reports accuracy by the condition number of square inputs, and ends early, reporting nothing,
 * on a stop signal (r->evaluation_stopped). */
double evaluate(run_state *r)
{
    const trainer_config *cfg = r->cfg;
    double t0 = lawt_now();
    eval_tally tally, by_cond[COND_BUCKETS];
    eval_tally_init(&tally, cfg->tol, cfg->ntol);
    for (int b = 0; b < COND_BUCKETS; b++) eval_tally_init(&by_cond[b], cfg->tol, cfg->ntol);
    int square = 1; /* every input so far */
    double loss_sum = 0; /* teacher-forced cross-entropy, as training computes it */
    long loss_tokens = 0;
    long lo = cfg->eval_size * r->rank / r->ranks, hi = cfg->eval_size * (r->rank + 1) / r->ranks;
    /* Every rank runs as many batches as the largest shard needs, so that --evaluate, which
     * can be long, checks for a stop signal between batches the same number of times on all. */
    long largest = (cfg->eval_size + r->ranks - 1) / r->ranks;
    for (long first = lo; first < lo + largest; first += cfg->eval_batch) {
        if (r->opt->evaluate_path && first > lo && comm_any(r->comm, comm_stop_requested())) {
            r->evaluation_stopped = 1;
            return -1.0;
        }
        if (first >= hi) continue;
        int B = (int)(hi - first < cfg->eval_batch ? hi - first : cfg->eval_batch);
        for (int j = 0; j < B; j++)
            datagen_tokens(&cfg->data, &r->vin, &r->vout, cfg->seed, STREAM_TEST,
                           r->test_index + (uint64_t)(first + j), r->src + (size_t)j * r->max_src,
                           &r->src_len[j], r->tgt + (size_t)j * r->max_tgt, &r->tgt_len[j],
                           &r->inputs[j], &r->targets[j], &r->tasks[j]);
        /* Sources are padded to the longest possible, not to the batch's longest, so that
         * an example's prediction does not depend on its batch companions (or rank count). */
        pad_rows(r->src, B, r->max_src, r->max_src, r->src_len);
        pad_rows(r->tgt, B, r->max_tgt, r->max_tgt, r->tgt_len);
        model_batch batch = {B, r->max_src, r->max_tgt, r->src, r->src_len, r->tgt, r->tgt_len};
        long tokens;
        loss_sum += trainer_loss_sum(r->model, r->local_batch, &batch, &tokens);
        loss_tokens += tokens;
        if (cfg->decoding == DECODING_BEAM)
            model_beam_decode(r->model, r->src, r->src_len, B, r->max_src, cfg->beam_size,
                              r->max_out, r->pred, r->pred_len);
        else
            model_greedy_decode(r->model, r->src, r->src_len, B, r->max_src, r->max_out, r->pred,
                                r->pred_len);
        for (int j = 0; j < B; j++) {
            lawt_matrix pred = {0, 0, r->pred_coeffs};
            decode_status status = decode_matrix(&r->vout, r->pred + (size_t)j * r->max_out,
                                                 r->pred_len[j], &pred, (int)r->out_coeffs);
            eval_tally_add(&tally, r->tasks[j], &r->inputs[j], &r->targets[j],
                           status == DECODE_OK ? &pred : NULL);
            square &= r->inputs[j].rows == r->inputs[j].cols;
            if (r->opt->evaluate_path && square)
                eval_tally_add(&by_cond[condition_bucket(&r->inputs[j])], r->tasks[j],
                               &r->inputs[j], &r->targets[j], status == DECODE_OK ? &pred : NULL);
        }
    }
    /* Counters are exact sums, so the accuracies do not depend on the number of ranks. */
    long counts[3 + LAWT_NORM_COUNT * EVAL_MAX_TOLERANCES];
    counts[0] = tally.count;
    counts[1] = tally.well_formed;
    counts[2] = loss_tokens;
    memcpy(counts + 3, tally.pass, sizeof tally.pass);
    comm_allreduce_sum_long(r->comm, counts, sizeof counts / sizeof counts[0]);
    tally.count = counts[0];
    tally.well_formed = counts[1];
    loss_tokens = counts[2];
    memcpy(tally.pass, counts + 3, sizeof tally.pass);
    comm_allreduce_sum_double(r->comm, &loss_sum, 1);
    double test_loss = loss_sum / (double)(loss_tokens > 0 ? loss_tokens : 1);
    r->test_index += (uint64_t)cfg->eval_size;

    /* Fractional when max_steps or a signal ended the run inside an epoch. */
    double epoch = (double)r->step / (double)r->steps_per_epoch;
    char json[4096], line[1024];
    lawt_text js = {json, sizeof json, 0}, ln = {line, sizeof line, 0};
    lawt_appendf(&js, "{\"type\":\"eval\",\"epoch\":%.6g,\"step\":%ld,\"examples\":%ld,"
                 "\"time\":%.3f,\"size\":%ld",
                 epoch, r->step, r->step * (long)cfg->batch_size, wall_seconds(r), tally.count);
    if (r->opt->evaluate_path)
        lawt_appendf(&ln, "eval   %s, %ld test examples: L1 accuracy", r->opt->evaluate_path,
                     tally.count);
    else
        lawt_appendf(&ln, "eval   epoch %.6g, %ld test examples: L1 accuracy", epoch, tally.count);
    static const char *const FIELDS[LAWT_NORM_COUNT] = {"acc", "acc_l2", "acc_linf"};
    for (int norm = 0; norm < LAWT_NORM_COUNT; norm++) {
        lawt_appendf(&js, ",\"%s\":{", FIELDS[norm]);
        for (int i = 0; i < cfg->ntol; i++) {
            double acc = eval_tally_accuracy(&tally, (lawt_norm)norm, i);
            lawt_appendf(&js, "%s\"%g\":%.2f", i ? "," : "", 100.0 * cfg->tol[i], acc);
            if (norm == NORM_L1) lawt_appendf(&ln, " %g%%: %.2f", 100.0 * cfg->tol[i], acc);
        }
        lawt_appendf(&js, "}");
    }
    double well_formed =
        tally.count ? 100.0 * (double)tally.well_formed / (double)tally.count : 0.0;
    lawt_appendf(&js, ",\"well_formed\":%.2f,\"test_loss\":%.9g}", well_formed, test_loss);
    lawt_appendf(&ln, " | well-formed %.2f%% | test loss %.4f | %.1f s", well_formed, test_loss,
                 lawt_now() - t0);
    say(r, "%s", line);
    record_metrics(r, json);
    if (r->opt->evaluate_path) {
        long not_square = !square; /* on any rank */
        comm_allreduce_sum_long(r->comm, &not_square, 1);
        if (not_square == 0) report_by_condition(r, by_cond);
        else say(r, "cond   inputs are not all square: no analysis by condition number");
    }
    return eval_tally_accuracy(&tally, NORM_L1, 0);
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
