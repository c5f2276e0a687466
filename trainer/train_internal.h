/* train_internal.h: the state of one training run (run_state) and the functions the trainer's
 * files share about it: the run log and metrics (run_log.c), the evaluation (evaluate.c), the
 * run directory and checkpoints (run_dir.c), and the run itself (train.c). Private to
 * trainer/: not installed, included by those files only; trainer.h is the public face. */
#ifndef LAWT_TRAINER_TRAIN_INTERNAL_H
#define LAWT_TRAINER_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "comm/comm_nccl.h"
#include "model/model.h"
#include "trainer/batch_source.h"
#include "trainer/trainer.h"

/* A growing string: the metrics history kept for checkpoints. */
typedef struct {
    char *text;
    size_t len, cap;
} text_buffer;

typedef struct {
    const trainer_config *cfg;
    const trainer_options *opt;
    comm *comm;
    int rank, ranks;

    lawt_vocab vin, vout;
    int max_src, max_tgt; /* framed sequence lengths */
    int max_out;          /* predicted tokens between the two EOS */
    model *model;
    comm_nccl *nccl;      /* gradient all-reduce on the GPUs (CUDA backend, ranks > 1) */
    float *grads;         /* host copy of the gradients: CUDA backend at ranks > 1 without NCCL */
    batch_spec batch_spec;
    batch_source *batches; /* training batches, during train() */

    int local_batch;
    long steps_per_epoch, total_steps, last_step;

    /* An evaluation batch: rows of max_src / max_tgt tokens. */
    int *src, *tgt, *src_len, *tgt_len;
    /* Evaluation: the problems and the predictions of one decoding batch. */
    lawt_matrix *inputs, *targets;
    lawt_task *tasks;
    double *pred_coeffs;
    size_t out_coeffs;
    int *pred, *pred_len;

    long step;            /* optimizer steps done */
    uint64_t test_index;  /* next unused example of the test stream */
    double lr;            /* learning rate of the last step */
    double best_accuracy;
    double wall_before;   /* wall seconds of earlier segments of a resumed run */
    double t_start;
    double train_seconds; /* inside training steps, this segment (throughput, ETA) */
    long steps_timed;
    long tokens_timed;

    /* Rank 0's outputs: descriptors of train.log and metrics.jsonl (-1: none, or closed after
     * a failed write), every write checked. */
    int log_fd, metrics_fd;
    int write_failed;      /* a write into the run directory failed (agreed by all ranks at
                            * the next check: stop_check, save_checkpoints) */
    int checkpoint_failed; /* that write was a checkpoint's */
    long fault_nan_step;   /* LAWT_FAULT_NAN_AT_STEP: the loss of that step is NaN (tests) */
    int dump_fd;           /* --evaluate --dump: the file of one JSON line an example; -1: none */
    int evaluation_stopped; /* --evaluate: a stop signal came between two batches */
    text_buffer metrics;
    int tty;
    int progress_shown;
    double progress_time;
} run_state;

/* run_log.c: the run's log (train.log and the terminal) and metrics (metrics.jsonl). */
void text_append(text_buffer *b, const char *s);
void append_to(run_state *r, int *fd, const char *name, const char *text, size_t n);
void log_line(run_state *r, const char *line);
void say(run_state *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void shout(run_state *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void record_metrics(run_state *r, const char *json);
double wall_seconds(const run_state *r);
void show_progress(run_state *r, double loss);
void log_train(run_state *r, double window_loss);

/* evaluate.c: evaluation on the test stream, and the analysis by condition number. */
void allocate_eval_buffers(run_state *r);
void free_eval_buffers(run_state *r);
double evaluate(run_state *r);

/* run_dir.c: the run directory's files, checkpoints and resume. */
void open_run_dir(run_state *r);
void resume(run_state *r, const char *path);
void save_checkpoints(run_state *r, double accuracy);
int agree_write_failed(run_state *r);

#endif
