/* train.c: one data-parallel training run: its setup (backend, model, summary lines) and the
 * training loop. Every rank holds the whole model and makes its own share of each global
 * batch: example number step * batch_size + rank * local_batch + j of the training stream, so
 * the examples a run sees do not depend on the number of ranks. The loss is summed over tokens
 * and scaled by 1 / (global token count), the gradients are summed over ranks in one
 * all-reduce of the flat buffer, and every rank then takes the same Adam step on the same
 * numbers, so the replicas stay identical. Rank 0 writes every file and every line of output
 * (run_log.c); the evaluation is in evaluate.c, the run directory and checkpoints in
 * run_dir.c. */
#include "trainer/train_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "curves/curves.h"
#include "encoding/encoding.h"

/* "  STATUS  meaning", the meaning wrapped at 90 columns under itself. */
static void print_exit_status(FILE *f, int status, const char *meaning)
{
    enum { INDENT = 7, WIDTH = 90 };
    fprintf(f, "  %3d ", status);
    int col = INDENT - 1;
    for (const char *p = meaning; *p;) {
        int n = (int)strcspn(p, " ");
        if (col + 1 + n > WIDTH) {
            fprintf(f, "\n%*s", INDENT - 1, "");
            col = INDENT - 1;
        }
        col += fprintf(f, " %.*s", n, p);
        p += n;
        while (*p == ' ') p++;
    }
    fputc('\n', f);
}

void trainer_print_exit_statuses(FILE *f)
{
#define PRINT_EXIT_STATUS(name, value, meaning) print_exit_status(f, value, meaning);
    TRAINER_EXIT_STATUSES(PRINT_EXIT_STATUS)
#undef PRINT_EXIT_STATUS
}

/* One optimizer step on the global batch (trainer_step); returns the mean token loss over all
 * ranks, or a non-finite loss without taking the step. */
static double train_step(run_state *r, long *global_tokens)
{
    const trainer_config *cfg = r->cfg;
    model_batch batch = batch_source_next(r->batches, r->step, global_tokens);
    const step_context ctx = {r->model, r->comm, r->nccl, r->ranks, r->grads,
                              r->fault_nan_step == r->step + 1};
    const step_hparams hp = {schedule_lr(cfg, r->step + 1, r->total_steps), cfg->beta1,
                             cfg->beta2, cfg->eps, cfg->clip};
    double loss = trainer_step(&ctx, &batch, &hp, r->step + 1, global_tokens, NULL);
    if (isfinite(loss)) {
        r->step++;
        r->lr = hp.lr;
    }
    return loss;
}

static model_backend choose_backend(run_state *r)
{
    switch (r->cfg->device) {
    case DEVICE_CPU: return BACKEND_CPU;
    case DEVICE_CUDA: return BACKEND_CUDA; /* model_create names the problem if unavailable */
    default: return model_cuda_available() ? BACKEND_CUDA : BACKEND_CPU;
    }
}

static void say_memory_plan(run_state *r, const model_config *mc, model_backend backend,
                            int host_gradients)
{
    run_shape shape = {r->cfg,      mc,        backend,   r->local_batch,
                       r->max_src,  r->max_tgt, r->max_out, host_gradients};
    char text[2048];
    memory_plan_describe(&shape, text, sizeof text);
    say(r, "%s", text);
}

static void print_summary(run_state *r, const model_config *mc)
{
    const trainer_config *cfg = r->cfg;
    const datagen_config *d = &cfg->data;
    const char *reduce = r->ranks == 1 ? "" : r->nccl ? " | all-reduce NCCL" : " | all-reduce MPI";
    int cuda = model_get_backend(r->model) == BACKEND_CUDA;
    const char *precision = enum_name(&MODEL_PRECISION_TABLE, cfg->precision);
    say(r, "lawt %s | %d rank%s x %d thread%s | backend %s %s%s", LAWT_VERSION, r->ranks,
        r->ranks > 1 ? "s" : "", cfg->threads, cfg->threads > 1 ? "s" : "",
        enum_name(&MODEL_BACKEND_TABLE, model_get_backend(r->model)), cuda ? precision : "fp32",
        reduce);
    if (!cuda && cfg->precision != PRECISION_FP32)
        say(r, "note   run.precision = %s applies to the CUDA backend; the CPU computes in fp32",
            precision);
    char rows[32], cols[32], dims[80];
    snprintf(rows, sizeof rows, d->rows_min == d->rows_max ? "%d" : "%d-%d", d->rows_min,
             d->rows_max);
    snprintf(cols, sizeof cols, d->cols_min == d->cols_max ? "%d" : "%d-%d", d->cols_min,
             d->cols_max);
    if (d->cols_max > 0) snprintf(dims, sizeof dims, "%sx%s", rows, cols);
    else if (d->rows_min == d->rows_max) snprintf(dims, sizeof dims, "%sx%s", rows, rows);
    else snprintf(dims, sizeof dims, "%s square", rows);
    say(r, "data   %s%s %s | %s -> %s | source <= %d tokens, target <= %d tokens",
        task_name(d->tasks[0]), d->ntasks > 1 ? " (+ joint tasks)" : "", dims, r->vin.enc.name,
        r->vout.enc.name, r->max_src, r->max_tgt);
    if (model_arch_recurrent(mc->arch))
        say(r, "model  %s encoder-decoder: %d layers x %d hidden units a side, embeddings %d -> "
            "%d%s | vocab %d -> %d | %zu parameters (formula: %zu)",
            enum_name(&MODEL_ARCH_TABLE, mc->arch), mc->rnn_layers, mc->rnn_hidden, mc->enc_dim,
            mc->dec_dim, mc->rnn_reverse_source ? ", sources read backwards" : "", mc->vocab_in,
            mc->vocab_out, model_num_params(r->model),
            model_param_count(mc));
    else
        say(r, "model  encoder %d layers x %d dims x %d heads, decoder %d x %d x %d | vocab %d -> "
            "%d | %zu parameters (Appendix G formula: %zu)",
            mc->enc_layers, mc->enc_dim, mc->enc_heads, mc->dec_layers, mc->dec_dim,
            mc->dec_heads, mc->vocab_in, mc->vocab_out, model_num_params(r->model),
            model_param_count(mc));
    if (mc->arch == ARCH_UNIVERSAL)
        say(r, "model  universal: encoder layer looped %d times, decoder layer %d times (0: not "
            "looped) | loop_mode %s%s", mc->enc_loops, mc->dec_loops,
            enum_name(&MODEL_LOOP_MODE_TABLE, mc->loop_mode),
            mc->loop_mode == LOOP_ACT ? " (see act_threshold, ponder_cost)" : "");
    say(r, "train  batch_size %d = batch_per_rank %d x %d rank%s | %ld steps an epoch x %d epochs "
        "= %ld steps%s | lr %g, %s, warm-up %ld | seed %llu",
        cfg->batch_size, r->local_batch, r->ranks, r->ranks > 1 ? "s" : "", r->steps_per_epoch,
        cfg->epochs, r->total_steps,
        r->last_step < r->total_steps ? " (max_steps stops earlier)" : "", cfg->lr,
        enum_name(&LR_SCHEDULE_TABLE, cfg->schedule), cfg->warmup, (unsigned long long)cfg->seed);
    if (r->step > 0)
        say(r, "resume from %s at step %ld (%ld examples)", r->opt->resume_path, r->step,
            r->step * (long)cfg->batch_size);
    else if (cfg->init_from[0] && !r->opt->evaluate_path)
        say(r, "weights from %s (retraining: fresh optimizer and schedule)", cfg->init_from);
}

/* Whether a second thread makes the next batch during the step: by default with the CUDA
 * backend only, since the CPU backend's pool already keeps every core busy. */
static int prefetch(const run_state *r)
{
    switch (r->cfg->prefetch) {
    case PREFETCH_ON: return 1;
    case PREFETCH_OFF: return 0;
    default: return model_get_backend(r->model) == BACKEND_CUDA;
    }
}

/* What stopped the run, for messages: this process's signal, or another rank's. */
static void stop_cause(char *buf, size_t cap)
{
    int sig = comm_stop_signal();
    if (sig) snprintf(buf, cap, "signal %d (%s)", sig, strsignal(sig));
    else snprintf(buf, cap, "a stop signal that another rank received");
}

/* --dump FILE: a new file, so that no earlier dump is ever overwritten. Returns 0, or
 * TRAINER_EXIT_USAGE with the reason said. */
static int open_dump(run_state *r)
{
    const char *path = r->opt->dump_path;
    if (!path) return 0;
    r->dump_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (r->dump_fd >= 0) return 0;
    if (errno == EEXIST)
        shout(r, "error: --dump %s: the file exists; lawt never overwrites one (remove it or "
              "name another)", path);
    else shout(r, "error: --dump %s: cannot create it: %s", path, strerror(errno));
    return TRAINER_EXIT_USAGE;
}

/* Steps until last_step (or a stop signal), evaluating and checkpointing at epoch ends and at
 * the end. Returns the exit status. */
static int train(run_state *r)
{
    const trainer_config *cfg = r->cfg;
    int status = 0;
    r->batches = batch_source_create(&r->batch_spec, r->step, prefetch(r));
    /* A checkpoint is written after an evaluation (or a stop): resuming does not redo it. */
    long evaluated_at = r->opt->resume_path ? r->step : -1;
    double window_loss = 0;
    long window_steps = 0;
    while (r->step < r->last_step) {
        double t0 = lawt_now();
        long tokens;
        double loss = train_step(r, &tokens);
        if (!isfinite(loss)) {
            char latest[CONFIG_TEXT_MAX + 64] = "none";
            if (cfg->dir[0]) checkpoint_latest(cfg->dir, latest, sizeof latest);
            shout(r, "error: the loss is %g at step %ld: stopped before that step changed the "
                  "weights, no checkpoint written (the latest: %s); lower train.lr or raise "
                  "train.warmup", loss, r->step + 1, latest);
            status = TRAINER_EXIT_DIVERGED;
            break;
        }
        r->train_seconds += lawt_now() - t0;
        r->steps_timed++;
        r->tokens_timed += tokens;
        window_loss += loss;
        window_steps++;
        show_progress(r, loss);
        if (r->step % cfg->log_every == 0 || r->step == r->last_step) {
            log_train(r, window_loss / (double)window_steps);
            window_loss = 0;
            window_steps = 0;
        }
        long epoch = r->step / r->steps_per_epoch;
        int epoch_end = r->step % r->steps_per_epoch == 0;
        if (epoch_end && cfg->eval_every > 0 && epoch % cfg->eval_every == 0) {
            save_checkpoints(r, cfg->eval_size > 0 ? evaluate(r) : -1.0);
            evaluated_at = r->step;
        }
        /* Every rank must stop at the same step: the flags are agreed on, not read. */
        long stop[2] = {comm_stop_requested(), r->write_failed};
        if (r->ranks > 1) comm_allreduce_sum_long(r->comm, stop, 2);
        if (stop[1]) {
            r->write_failed = 1;
            /* A log that cannot be written: the checkpoint still holds the whole history. */
            if (!r->checkpoint_failed) {
                say(r, "stopping at step %ld: a write into the run directory failed; writing a "
                    "checkpoint", r->step);
                save_checkpoints(r, -1.0);
            }
            status = TRAINER_EXIT_WRITE_FAILED;
            break;
        }
        if (stop[0]) {
            char cause[128];
            stop_cause(cause, sizeof cause);
            say(r, "stopping at step %ld on %s%s", r->step, cause,
                cfg->dir[0] ? "; writing a checkpoint" : "");
            save_checkpoints(r, -1.0);
            status = r->write_failed ? TRAINER_EXIT_WRITE_FAILED : TRAINER_EXIT_STOPPED;
            break;
        }
    }
    batch_source_free(r->batches);
    r->batches = NULL;
    if (status == 0 && evaluated_at != r->step)
        save_checkpoints(r, cfg->eval_size > 0 ? evaluate(r) : -1.0);
    if (status == 0 && agree_write_failed(r)) status = TRAINER_EXIT_WRITE_FAILED;
    if (status == TRAINER_EXIT_WRITE_FAILED) {
        char latest[CONFIG_TEXT_MAX + 64] = "none";
        checkpoint_latest(cfg->dir, latest, sizeof latest);
        shout(r, "stopped at step %ld: a write into %s failed (above); the latest checkpoint "
              "there: %s", r->step, cfg->dir, latest);
    }
    say(r, "%s: %ld steps, %ld examples, %.1f s", status ? "stopped" : "done", r->step,
        r->step * (long)cfg->batch_size, wall_seconds(r));
    if (r->rank == 0) {
        /* train.log's copy of the summary goes through a memory stream, so that its write is
         * checked like every other (a failure here: status 74 at the end of trainer_run). */
        char *summary = NULL;
        size_t len = 0;
        FILE *mem = r->log_fd >= 0 ? open_memstream(&summary, &len) : NULL;
        curves_end_of_run(r->metrics.text, r->step * (long)cfg->batch_size, wall_seconds(r), cfg->dir,
                          mem);
        if (mem) {
            fclose(mem);
            append_to(r, &r->log_fd, "train.log", summary, len);
        }
        free(summary);
    }
    return status;
}

int trainer_run(const trainer_config *cfg, const trainer_options *opt, comm *c)
{
    run_state run = {0};
    run_state *r = &run;
    r->cfg = cfg;
    r->opt = opt;
    r->comm = c;
    r->rank = comm_rank(c);
    r->ranks = comm_size(c);
    r->t_start = lawt_now();
    r->tty = isatty(fileno(stderr));
    r->best_accuracy = -1.0;
    r->log_fd = r->metrics_fd = r->dump_fd = -1;
    r->fault_nan_step = lawt_fault_setting("LAWT_FAULT_NAN_AT_STEP");
    int status = 0;
    /* A fixed thread count fixes how each product is split, hence its rounding. */
    model_set_threads(cfg->threads);

    lawt_encoding enc_in, enc_out;
    encoding_from_name(cfg->encoding, &enc_in);
    encoding_from_name(cfg->out_encoding[0] ? cfg->out_encoding : cfg->encoding, &enc_out);
    vocab_init(&r->vin, &enc_in);
    vocab_init(&r->vout, &enc_out);
    r->max_src = datagen_max_src_len(&cfg->data, &enc_in);
    r->max_tgt = datagen_max_tgt_len(&cfg->data, &enc_out);
    r->max_out = r->max_tgt - 2;

    model_config mc = config_model(cfg);
    char err[1024];
    if (model_config_validate(&mc, err, sizeof err)) comm_abort(c, 2, "[model]: %s", err);
    r->local_batch = cfg->batch_size / r->ranks;
    r->steps_per_epoch = (cfg->epoch_size + cfg->batch_size - 1) / cfg->batch_size;
    r->total_steps = r->steps_per_epoch * cfg->epochs;
    r->last_step = cfg->max_steps > 0 && cfg->max_steps < r->total_steps ? cfg->max_steps
                                                                          : r->total_steps;
    model_backend backend = choose_backend(r);
    if (opt->memory_plan) {
        if (opt->memory_plan > 0) backend = (model_backend)(opt->memory_plan - 1);
        say_memory_plan(r, &mc, backend, backend == BACKEND_CUDA && r->ranks > 1 &&
                                             !comm_nccl_built());
        vocab_free(&r->vin);
        vocab_free(&r->vout);
        return 0;
    }
    if (backend == BACKEND_CUDA) {
        model_set_cuda_precision((model_precision)cfg->precision);
        /* One GPU a process: comm_nccl_init picks it from the local rank, and so does the model
         * when there is no NCCL. */
        model_set_cuda_device_for_rank(comm_local_rank(c));
        if (r->ranks > 1 && comm_nccl_built()) r->nccl = comm_nccl_init(c);
    }
    /* evaluation decodes in chunks of the training batch: it does not size the activations */
    r->model = model_create(&mc, backend, r->local_batch);
    model_init_params(r->model, cfg->seed);
    r->batch_spec = (batch_spec){&cfg->data, &r->vin, &r->vout, cfg->seed, cfg->batch_size,
                                 r->rank, r->local_batch, r->max_src, r->max_tgt};
    allocate_eval_buffers(r);
    if (r->ranks > 1 && !r->nccl && model_get_backend(r->model) != BACKEND_CPU)
        r->grads = lawt_malloc(model_num_params(r->model) * sizeof(float));
    if (opt->evaluate_path) {
        if (checkpoint_load_for_retraining(opt->evaluate_path, r->model, err, sizeof err))
            comm_abort(c, 1, "--evaluate: %s", err);
    } else if (opt->resume_path) {
        resume(r, opt->resume_path);
    } else if (cfg->init_from[0] &&
               checkpoint_load_for_retraining(cfg->init_from, r->model, err, sizeof err)) {
        comm_abort(c, 1, "[run] init_from: %s", err);
    }
    open_run_dir(r);
    print_summary(r, &mc);
    say_memory_plan(r, &mc, backend, r->grads != NULL);

    /* A stop signal that came while the model was built or a checkpoint loaded (the handler
     * is installed at start): nothing trained yet, so nothing to checkpoint. */
    if (comm_any(c, comm_stop_requested())) {
        char cause[128];
        stop_cause(cause, sizeof cause);
        shout(r, "stopping before %s on %s: nothing new to checkpoint",
              opt->evaluate_path ? "the evaluation" : "training", cause);
        status = TRAINER_EXIT_STOPPED;
    } else if (opt->evaluate_path) {
        status = open_dump(r);
        if (status == 0) {
            say(r, "evaluating %s on examples 0 to %ld of the test stream (seed %llu)",
                opt->evaluate_path, cfg->eval_size - 1, (unsigned long long)cfg->seed);
            evaluate(r);
        }
        if (r->dump_fd >= 0 && close(r->dump_fd) != 0) {
            shout(r, "error: writing %s failed at its close: %s", opt->dump_path, strerror(errno));
            r->write_failed = 1;
        }
        r->dump_fd = -1;
        if (r->evaluation_stopped) {
            char cause[128];
            stop_cause(cause, sizeof cause);
            shout(r, "stopping the evaluation on %s: no result recorded", cause);
            status = TRAINER_EXIT_STOPPED;
        }
    } else if (opt->dry_run) {
        long tokens;
        batch_source *one = batch_source_create(&r->batch_spec, r->step, 0);
        batch_source_next(one, r->step, &tokens); /* the data path works too */
        batch_source_free(one);
        say(r, "dry run: configuration, data and model are ready; nothing trained");
    } else {
        status = train(r);
    }
    if (status == 0 && agree_write_failed(r)) {
        shout(r, "a write into %s failed (above)", opt->dump_path && !cfg->dir[0] ? opt->dump_path
                                                                                  : cfg->dir);
        status = TRAINER_EXIT_WRITE_FAILED;
    }

    free_eval_buffers(r);
    free(r->grads);
    model_free(r->model);
    comm_nccl_free(r->nccl);
    vocab_free(&r->vin);
    vocab_free(&r->vout);
    free(r->metrics.text);
    if (r->log_fd >= 0) close(r->log_fd);
    if (r->metrics_fd >= 0) close(r->metrics_fd);
    return status;
}
