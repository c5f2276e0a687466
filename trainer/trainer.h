/* trainer.h: the experiment configuration (one INI file, every key in one table) and the
 * data-parallel training run of lawt_dist.
 *
 * A configuration is built in three steps: config_init (defaults), then any number of
 * config_parse_file / config_parse_string / config_set_assignment calls (later values win),
 * then config_finish (cross-key checks, the datagen config). Every failure returns -1 with a
 * message naming the file, line, section, key and what is allowed. config_to_ini writes the
 * resolved configuration (every key, defaults included) that rank 0 broadcasts and stores in
 * the run directory and in checkpoints: parsing it again gives the same configuration. */
#ifndef LAWT_TRAINER_H
#define LAWT_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "comm/comm.h"
#include "comm/comm_nccl.h"
#include "datagen/datagen.h"
#include "eval/eval.h"
#include "model/model.h"

/* The enumerations of the configuration, one table each (common.h), names as the INI spells
 * them: the config keys' choices are made from these lists. */
#define LR_SCHEDULES(X)                                                                     \
    X(SCHEDULE_COSINE, "cosine", "cosine decay to lr_min at the last step")                 \
    X(SCHEDULE_CONSTANT, "constant", "lr")                                                  \
    X(SCHEDULE_INVERSE_SQRT, "inverse_sqrt", "lr * sqrt(warmup / step)")                    \
    X(SCHEDULE_COSINE_PERIOD, "cosine_period",                                              \
      "cosine from lr to lr_min over cosine_period steps, then again from the top, both "   \
      "ends times lr_shrink at each restart (the paper's code's adam_cosine)")
typedef enum { LR_SCHEDULES(ENUM_VALUE) } lr_schedule;
extern const enum_table LR_SCHEDULE_TABLE;

#define DECODINGS(X)                                                                        \
    X(DECODING_GREEDY, "greedy", "the most likely token at each position")                  \
    X(DECODING_BEAM, "beam", "beam search of width eval.beam_size")
typedef enum { DECODINGS(ENUM_VALUE) } decoding;

#define DEVICE_CHOICES(X)                                                                   \
    X(DEVICE_AUTO, "auto", "cuda when built with it and a GPU is visible, else cpu")        \
    X(DEVICE_CPU, "cpu", "the CPU backend")                                                 \
    X(DEVICE_CUDA, "cuda", "the CUDA backend; stops with a message when there is none")
typedef enum { DEVICE_CHOICES(ENUM_VALUE) } device_choice;

#define PREFETCH_CHOICES(X)                                                                 \
    X(PREFETCH_AUTO, "auto", "on with the CUDA backend, off on the CPU")                    \
    X(PREFETCH_ON, "on", "a second thread makes the next batch")                            \
    X(PREFETCH_OFF, "off", "the step makes its own batch")
typedef enum { PREFETCH_CHOICES(ENUM_VALUE) } prefetch_choice;

#define CONFIG_TEXT_MAX 256   /* longest value of a text key (a path, a tolerance list) */
#define CONFIG_MAX_KEYS 64
#define CONFIG_MAX_OOD 16     /* out-of-distribution sets of eval.ood */

typedef struct {
    /* [data] */
    datagen_config data;              /* from the [data] keys, through datagen_set */
    char encoding[CONFIG_TEXT_MAX];     /* input encoding */
    char out_encoding[CONFIG_TEXT_MAX]; /* output encoding; empty: same as the input's */
    /* [model] */
    int enc_layers, dec_layers, enc_dim, dec_dim, enc_heads, dec_heads;
    int recompute; /* model_recompute of model.h, in the same order */
    int arch;      /* model_arch of model.h */
    int rnn_layers, rnn_hidden, rnn_reverse_source;
    int enc_loops, dec_loops; /* arch universal */
    int loop_mode;            /* model_loop_mode */
    double act_threshold, ponder_cost;
    /* [train] */
    uint64_t seed;
    int batch_size;     /* global: split evenly over the ranks; 0 until config_resolve_batch */
    int batch_per_rank; /* 0: not given (batch_size is) */
    long epoch_size;
    int epochs;
    long max_steps; /* 0: no limit */
    double lr, lr_min;
    long warmup;
    int schedule; /* lr_schedule */
    long cosine_period; /* cosine_period: steps of one cosine after warm-up */
    double lr_shrink;   /* cosine_period: factor of lr and lr_min at each restart */
    double clip;  /* 0: no clipping */
    double beta1, beta2, eps;
    int threads;
    int prefetch; /* prefetch_choice */
    long log_every;
    /* [eval] */
    long eval_size;
    char tolerances[CONFIG_TEXT_MAX];
    int ntol;
    double tol[EVAL_MAX_TOLERANCES]; /* fractions (the INI says percent) */
    int decoding;                    /* decoding */
    int beam_size;
    int eval_every;                  /* epochs; 0: only at the end */
    int eval_batch;
    char ood[CONFIG_TEXT_MAX];       /* eval.ood as given; config_finish makes the sets: */
    int nood;
    char ood_name[CONFIG_MAX_OOD][48];          /* "laplace", "wigner@0.3" */
    datagen_config ood_data[CONFIG_MAX_OOD];    /* the data of each */
    /* [run] */
    char dir[CONFIG_TEXT_MAX];       /* empty: write no files */
    char init_from[CONFIG_TEXT_MAX]; /* a checkpoint whose weights start the run; empty: none */
    int device;                      /* device_choice */
    int precision;                   /* model_precision (model.h) */
    int keep_checkpoints;

    /* The text of every key of the table (defaults included), for config_to_ini. */
    char value[CONFIG_MAX_KEYS][CONFIG_TEXT_MAX];
} trainer_config;

void config_init(trainer_config *cfg);
int config_parse_file(trainer_config *cfg, const char *path, char *err, size_t errcap);
/* origin names the text in messages ("checkpoint step-100.h5", "broadcast config"). */
int config_parse_string(trainer_config *cfg, const char *text, const char *origin, char *err,
                        size_t errcap);
/* "section.key=value", as given to --set. */
int config_set_assignment(trainer_config *cfg, const char *assignment, char *err, size_t errcap);
int config_finish(trainer_config *cfg, char *err, size_t errcap);
/* The model a configuration builds (memory_plan.c): vocabularies from its encodings, positions
 * from its data's longest framed source and target. */
model_config config_model(const trainer_config *cfg);
/* Refuses a configuration whose rank (model_memory_plan's bytes for the CPU backend at the
 * per-rank batch; on the host only, for run.device = cuda) cannot fit in this machine's
 * physical memory, before anything is allocated: the message gives the bytes needed and the
 * keys that set them. After config_resolve_batch (memory_plan.c). */
int config_check_memory(const trainer_config *cfg, int ranks, char *err, size_t errcap);
/* The resolved INI text (malloc'd). */
char *config_to_ini(const trainer_config *cfg);
/* The table of every key: type, default, allowed values, meaning. markdown: as the table of
 * jobs/README.md; otherwise aligned plain text for a terminal. */
void config_print_help(FILE *f, int markdown);

/* The global batch when neither train.batch_size nor train.batch_per_rank is given. */
#define CONFIG_DEFAULT_BATCH "64"
/* Settles the batch for a run on `ranks` ranks (memory_plan.c): batch_per_rank x ranks, or
 * batch_size, or CONFIG_DEFAULT_BATCH; setting both is an error, and so is a global batch the
 * ranks cannot share evenly. Afterwards batch_size holds the global batch and batch_per_rank 0,
 * in the fields and in the text config_to_ini writes. */
int config_resolve_batch(trainer_config *cfg, int ranks, char *err, size_t errcap);

/* The shape of one rank of a run, and the memory it will hold there. */
typedef struct {
    const trainer_config *cfg;
    const model_config *model;
    model_backend backend;
    int local_batch, max_src, max_tgt, max_out;
    int host_gradients; /* the all-reduce goes through a host copy of the gradients */
} run_shape;
/* Two lines: the bytes per rank by what they hold, in GiB, and the same as key=value bytes. */
void memory_plan_describe(const run_shape *s, char *text, size_t cap);

/* One optimizer step (step.c), the trainer's and every benchmark's: forward on this rank's
 * share of the global batch, the global token count, backward scaled by it, the gradients
 * summed over the ranks (NCCL on the device, MPI in place on the CPU, or MPI through
 * host_grads), the mean loss over the ranks, clipping of the gradient norm at clip, and Adam
 * step `step` (counted from 1) at lr. Returns the mean token loss; a non-finite one (on every
 * rank alike) returns before the weights change. *tokens (may be NULL): in, a count of this
 * rank's to sum over the ranks alongside (the trainer's throughput); out, the sum. times (may
 * be NULL) accumulates the phases' wall seconds. */
typedef struct {
    model *model;
    comm *comm;        /* NULL with one rank */
    comm_nccl *nccl;   /* NULL: the all-reduce goes through MPI */
    int ranks;
    float *host_grads; /* num_params floats: a device model's gradients through MPI, else NULL */
    int fault_nan;     /* tests (LAWT_FAULT_NAN_AT_STEP): this step's loss is NaN */
} step_context;
typedef struct {
    double lr, beta1, beta2, eps, clip; /* clip 0: none */
} step_hparams;
typedef struct {
    double forward_s, backward_s, allreduce_s, optimizer_s; /* allreduce: gradients and loss */
} step_times;
double trainer_step(const step_context *ctx, const model_batch *batch, const step_hparams *hp,
                    long step, long *tokens, step_times *times);

/* The teacher-forced loss of batch's B framed examples through the model's loss path
 * (model_forward, as a training step computes it), in chunks of at most max_batch rows (the
 * batch the model was created for): returns the sum over target tokens of -log p(token) and
 * sets *tokens to their count. The evaluation's test loss is the sum over the ranks of the
 * one over the other. It leaves the model's activations as a forward does. */
double trainer_loss_sum(model *m, int max_batch, const model_batch *batch, long *tokens);

/* Learning rate of optimizer step `step` (counted from 1) of a run of total_steps steps:
 * linear warm-up from 0 over `warmup` steps, then cosine decay to lr_min at total_steps,
 * constant, lr * sqrt(warmup / step), or cosines of cosine_period steps each, the k-th (from
 * 0) from lr * lr_shrink^k down to lr_min * lr_shrink^k (the reference's adam_cosine: t steps
 * after warm-up are step t mod period of cosine number floor(t / period)). A pure function of
 * the step: a resumed run follows the same schedule. */
double schedule_lr(const trainer_config *cfg, long step, long total_steps);

typedef struct {
    const char *config_text; /* the resolved text of cfg, stored in run dir and checkpoints */
    const char *resume_path; /* a checkpoint to continue from, or NULL */
    const char *evaluate_path; /* a checkpoint to evaluate (no training), or NULL */
    /* With evaluate_path, one process: a new file (never an existing one) that receives one
     * JSON line per test example (eval_example_json, with its "index"); NULL: none */
    const char *dump_path;
    int dry_run;             /* build everything, print the summary, train nothing */
    /* > 0: print the memory plan of a rank for this backend (1 + model_backend) and exit,
     * building nothing (no model, no data, no device needed) */
    int memory_plan;
} trainer_options;

/* The exit statuses of lawt_dist, one table: name, value, meaning (--help prints it). */
#define TRAINER_EXIT_STATUSES(X)                                                               \
    X(TRAINER_EXIT_DONE, 0, "done")                                                            \
    X(TRAINER_EXIT_ERROR, 1, "an error, named on stderr (a damaged checkpoint, a failed rank)") \
    X(TRAINER_EXIT_USAGE, 2, "a bad command line or configuration, or a new run in a run "     \
                             "directory with checkpoints: refused before any work")          \
    X(TRAINER_EXIT_DIVERGED, 65, "the loss became NaN or infinite: stopped at that step, no "  \
                                 "checkpoint written (the earlier ones stay)")                \
    X(TRAINER_EXIT_LOCKED, 73, "the run directory is in use by another lawt_dist (run.lock; "  \
                               "its host and PID are named)")                                 \
    X(TRAINER_EXIT_WRITE_FAILED, 74, "a write into the run directory failed (disk full, "      \
                                     "quota): stopped at that step, file and errno named; "   \
                                     "the checkpoints already written stay")                  \
    X(TRAINER_EXIT_STOPPED, COMM_EXIT_STOPPED, "stopped by SIGTERM or SIGUSR1 (once training " \
                                               "has begun, after writing a checkpoint: "       \
                                               "--resume continues)")

#define TRAINER_EXIT_ENUM(name, value, meaning) name = value,
typedef enum { TRAINER_EXIT_STATUSES(TRAINER_EXIT_ENUM) } trainer_exit_status;
#undef TRAINER_EXIT_ENUM

/* The table above as "  STATUS  meaning" lines. */
void trainer_print_exit_statuses(FILE *f);

/* Rank 0, before anything is written into the run directory dir (training, or an evaluation
 * told to write there): creates it and locks it: run.lock, held with flock until the process
 * exits, says "host H, PID P" of the holder, and a second lawt_dist on the same directory is
 * refused naming them. A new training run (new_run: not resuming) is refused in a directory
 * that holds a checkpoint (step-*.h5): its history would mix with another run's. Returns 0, or an exit
 * status (TRAINER_EXIT_LOCKED, TRAINER_EXIT_USAGE, ...) with the message in err. */
int trainer_claim_run_dir(const char *dir, int new_run, char *err, size_t errcap);

/* Builds vocabularies, data and model from cfg, trains (every rank of c runs this), evaluates
 * and, on rank 0, writes the run directory, which the caller has claimed
 * (trainer_claim_run_dir). With evaluate_path: loads that checkpoint's weights and evaluates
 * them on the first eval.size examples of cfg's test stream, nothing else. Returns the process
 * exit status (trainer_exit_status), the same on every rank.
 *
 * Nothing in the run directory is ever truncated: train.log and metrics.jsonl are appended to
 * (a resume adds a {"type":"resume"} record, step 0 for a new run after one that left no
 * checkpoint; records an earlier segment wrote after its last checkpoint stay, so a reader
 * keeps the last record of each step); a last line cut short
 * (a killed process, a full disk) gets its '\n' and stays as a line that does not parse,
 * which readers skip; config.ini is written once, and a later segment with another
 * configuration appends it as comment lines. The stop signals are handled from the start:
 * comm_install_stop_signals must have been called. */
int trainer_run(const trainer_config *cfg, const trainer_options *opt, comm *c);

#endif
