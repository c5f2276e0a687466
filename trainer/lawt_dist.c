/* lawt_dist: trains a transformer on generated linear-algebra problems, on one process or many
 * (mpirun / srun). Rank 0 reads and checks the configuration and broadcasts the resolved text;
 * every rank parses that same text, so all ranks run the same experiment. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "comm/comm.h"
#include "model/model.h"
#include "trainer/trainer.h"

#ifdef LAWT_JOBS_DIR
#define JOBS_DIR_HELP " (then " LAWT_JOBS_DIR ")"
#else
#define JOBS_DIR_HELP ""
#endif

static const char USAGE[] =
    "usage: lawt_dist --config FILE [--set SECTION.KEY=VALUE]... [--run-dir DIR]\n"
    "                 [--resume [CHECKPOINT]] [--dry-run] [--memory-plan [cpu|cuda]]\n"
    "       lawt_dist --evaluate CHECKPOINT [--config FILE] [--set SECTION.KEY=VALUE]...\n"
    "                 [--run-dir DIR] [--dump FILE]\n"
    "       lawt_dist --help | --help-config [--markdown]\n"
    "\n"
    "Trains a transformer on generated linear-algebra problems (Charton 2022) and evaluates\n"
    "it at the end of every epoch. Under mpirun or srun, each rank makes its share of every\n"
    "global batch; results do not depend on the number of ranks.\n"
    "\n"
    "  --config FILE        the experiment (INI; keys: --help-config, or jobs/README.md); a\n"
    "                       bare name (inversion.ini) not in the current directory is looked\n"
    "                       up in the installed jobs, PREFIX/share/lawt/jobs next to this\n"
    "                       program's PREFIX/bin" JOBS_DIR_HELP "\n"
    "  --set S.K=V          overrides key K of section [S] (repeatable, applied in order)\n"
    "  --run-dir DIR        same as --set run.dir=DIR: config.ini, train.log, metrics.jsonl and\n"
    "                       checkpoints go there (appended to, never truncated; run.lock keeps\n"
    "                       a second lawt_dist out)\n"
    "  --resume [FILE]      continues from a checkpoint (default: the latest step-*.h5 of the\n"
    "                       run directory); without --config, the checkpoint's configuration\n"
    "  --dry-run            builds data and model, prints the summary (with the memory plan)\n"
    "                       and exits\n"
    "  --memory-plan [B]    prints the bytes each rank will hold (parameters, gradients, Adam,\n"
    "                       activations, decoding, buffers) on backend B (default: the one a\n"
    "                       run would use) and exits, building nothing: a CPU plans a GPU run\n"
    "  --evaluate FILE      evaluates the weights of a checkpoint on the first eval.size\n"
    "                       examples of the test stream and exits: the configuration's data\n"
    "                       (out of distribution with --set data.*), or without --config the\n"
    "                       checkpoint's own; the model keys must match the checkpoint. It\n"
    "                       writes files only with --run-dir (or --set run.dir): the run.dir\n"
    "                       of the checkpoint or of --config is not used. It also reports\n"
    "                       the failure analysis of sections 4.5-4.6 (accuracy by condition\n"
    "                       number; inversion: |P - M^-1|, the input's condition number as a\n"
    "                       failure predictor; eigenvectors: the eigenvalues of the\n"
    "                       prediction, the condition number of the predicted Q)\n"
    "  --dump FILE          with --evaluate, one process: writes every test example to FILE\n"
    "                       (new: an existing file is refused), one JSON object a line: index,\n"
    "                       task, input, target, prediction (null if malformed), well_formed,\n"
    "                       error and pass per norm and tolerance, cond, q_cond (eigenvectors),\n"
    "                       inverse_error (inversion)\n"
    "  --help-config        the table of every configuration key (--markdown: the table of\n"
    "                       jobs/README.md)\n"
    "\n"
    "Exit status:\n";

#define MAX_SETS 256

typedef struct {
    const char *config;
    const char *sets[MAX_SETS];
    int nsets;
    const char *run_dir;
    int resume;
    const char *resume_file;
    const char *evaluate;
    const char *dump;
    int dry_run, help, help_config, markdown;
    int memory_plan; /* trainer_options.memory_plan: 0, or 1 + the backend; -1: the run's */
    char config_path[PATH_MAX];
} cli_args;

/* A bare job name (no '/') not in the current directory: the installed jobs, found from this
 * program's own place (PREFIX/bin/lawt_dist -> PREFIX/share/lawt/jobs), then the install
 * prefix it was configured with (LAWT_JOBS_DIR, not in a relocatable build). */
static const char *find_job(const char *name, char *path, size_t cap)
{
    if (strchr(name, '/') || access(name, F_OK) == 0) return name;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            int w = snprintf(path, cap, "%s/../share/lawt/jobs/%s", exe, name);
            if (w > 0 && (size_t)w < cap && access(path, F_OK) == 0) return path;
        }
    }
#ifdef LAWT_JOBS_DIR
    int w = snprintf(path, cap, "%s/%s", LAWT_JOBS_DIR, name);
    if (w > 0 && (size_t)w < cap && access(path, F_OK) == 0) return path;
#endif
    return name; /* the error names the file as given */
}

static int parse_args(int argc, char **argv, cli_args *a, char *err, size_t errcap)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) a->help = 1;
        else if (strcmp(arg, "--help-config") == 0) a->help_config = 1;
        else if (strcmp(arg, "--markdown") == 0) a->markdown = 1;
        else if (strcmp(arg, "--dry-run") == 0) a->dry_run = 1;
        else if (strcmp(arg, "--config") == 0 && has_value)
            a->config = find_job(argv[++i], a->config_path, sizeof a->config_path);
        else if (strcmp(arg, "--memory-plan") == 0) {
            a->memory_plan = -1;
            if (has_value && strcmp(argv[i + 1], "cpu") == 0)
                a->memory_plan = 1 + BACKEND_CPU, i++;
            else if (has_value && strcmp(argv[i + 1], "cuda") == 0)
                a->memory_plan = 1 + BACKEND_CUDA, i++;
        }
        else if (strcmp(arg, "--run-dir") == 0 && has_value) a->run_dir = argv[++i];
        else if (strcmp(arg, "--evaluate") == 0 && has_value) a->evaluate = argv[++i];
        else if (strcmp(arg, "--dump") == 0 && has_value) a->dump = argv[++i];
        else if (strcmp(arg, "--set") == 0 && has_value) {
            if (a->nsets == MAX_SETS) {
                snprintf(err, errcap, "more than %d --set options", MAX_SETS);
                return -1;
            }
            a->sets[a->nsets++] = argv[++i];
        } else if (strcmp(arg, "--resume") == 0) {
            a->resume = 1;
            if (has_value && strncmp(argv[i + 1], "--", 2) != 0) a->resume_file = argv[++i];
        } else {
            snprintf(err, errcap, "%s: %s (see --help)",
                     strncmp(arg, "--", 2) == 0 && !has_value ? "missing value or unknown option"
                                                               : "unknown argument", arg);
            return -1;
        }
    }
    return 0;
}

static int apply_overrides(trainer_config *cfg, const cli_args *a, char *err, size_t errcap)
{
    for (int i = 0; i < a->nsets; i++)
        if (config_set_assignment(cfg, a->sets[i], err, errcap)) return -1;
    if (a->run_dir) {
        char assignment[CONFIG_TEXT_MAX + 16];
        snprintf(assignment, sizeof assignment, "run.dir=%s", a->run_dir);
        if (config_set_assignment(cfg, assignment, err, errcap)) return -1;
    }
    return 0;
}

/* Rank 0: the configuration from the file (or the checkpoint being resumed) and the command
 * line, checked; the resume path is resolved into resume_path (empty when not resuming). */
static int resolve_config(const cli_args *a, int ranks, trainer_config *cfg, char *resume_path,
                          size_t pathcap, char *err, size_t errcap)
{
    config_init(cfg);
    if (a->evaluate && a->resume) {
        snprintf(err, errcap, "--evaluate and --resume do not go together (--resume trains on)");
        return -1;
    }
    if (a->dump && !a->evaluate) {
        snprintf(err, errcap, "--dump goes with --evaluate (it writes the examples evaluated)");
        return -1;
    }
    if (a->dump && ranks > 1) {
        snprintf(err, errcap, "--dump writes from one process: run --evaluate --dump without "
                 "mpirun (%d ranks here)", ranks);
        return -1;
    }
    if (!a->config && !a->resume && !a->evaluate) {
        snprintf(err, errcap, "no configuration: give --config FILE (see --help)");
        return -1;
    }
    if (a->evaluate && !a->config) {
        /* the checkpoint's own experiment, test stream included */
        checkpoint_meta meta;
        if (checkpoint_read_meta(a->evaluate, &meta, err, errcap)) return -1;
        int rc = config_parse_string(cfg, meta.config_text, a->evaluate, err, errcap);
        checkpoint_meta_free(&meta);
        if (rc) return -1;
    }
    if (a->config && config_parse_file(cfg, a->config, err, errcap)) return -1;
    /* An evaluation writes only where the command line says: the run.dir of the checkpoint
     * (or of a training configuration) is the training run's, whose history it must not
     * touch. */
    if (a->evaluate && config_set_assignment(cfg, "run.dir=", err, errcap)) return -1;
    if (apply_overrides(cfg, a, err, errcap)) return -1;
    resume_path[0] = '\0';
    if (a->resume) {
        if (a->resume_file) {
            snprintf(resume_path, pathcap, "%s", a->resume_file);
        } else if (!cfg->dir[0]) {
            snprintf(err, errcap, "--resume without a checkpoint file needs a run directory "
                     "(--run-dir DIR)");
            return -1;
        } else if (checkpoint_latest(cfg->dir, resume_path, pathcap)) {
            snprintf(err, errcap, "--resume: no checkpoint step-*.h5 in %s", cfg->dir);
            return -1;
        }
        if (!a->config) {
            checkpoint_meta meta;
            if (checkpoint_read_meta(resume_path, &meta, err, errcap)) return -1;
            config_init(cfg);
            int rc = config_parse_string(cfg, meta.config_text, resume_path, err, errcap);
            checkpoint_meta_free(&meta);
            if (rc || apply_overrides(cfg, a, err, errcap)) return -1;
        }
    }
    if (config_finish(cfg, err, errcap)) return -1;
    if (cfg->device == DEVICE_CUDA && !model_cuda_available() && !a->memory_plan) {
        snprintf(err, errcap, "[run] device = cuda, but %s; use device = auto (the GPU when "
                 "there is one) or cpu",
                 model_cuda_built() ? "no CUDA device is visible (no GPU, or no driver)"
                                    : "this lawt_dist was built without the CUDA backend (no "
                                      "nvcc when CMake configured it)");
        return -1;
    }
    if (config_resolve_batch(cfg, ranks, err, errcap)) return -1;
    return config_check_memory(cfg, ranks, err, errcap);
}

int main(int argc, char **argv)
{
    comm *c = comm_init(&argc, &argv);
    /* From the start: a stop while the model is built or a checkpoint loads still ends in
     * the stop status, with a message (trainer_run checks before it trains). */
    comm_install_stop_signals();
    int rank = comm_rank(c);
    trainer_config *cfg = malloc(sizeof *cfg);
    if (!cfg) comm_abort(c, 1, "out of memory");
    char *text = NULL;
    char resume_path[4096] = "", evaluate_path[4096] = "", dump_path[4096] = "";

    /* Rank 0 decides; exit_status >= 0 tells every rank to stop there (help, or a bad
     * configuration: reported once, before any work, with a clean exit everywhere). */
    struct {
        int exit_status;
        int dry_run, memory_plan;
    } decision = {-1, 0, 0};
    if (rank == 0) {
        cli_args a;
        char err[2048];
        if (parse_args(argc, argv, &a, err, sizeof err)) {
            fprintf(stderr, "lawt_dist: %s\n", err);
            decision.exit_status = 2;
        } else if (a.help) {
            fputs(USAGE, stdout);
            trainer_print_exit_statuses(stdout);
            decision.exit_status = 0;
        } else if (a.help_config) {
            config_print_help(stdout, a.markdown);
            decision.exit_status = 0;
        } else if (resolve_config(&a, comm_size(c), cfg, resume_path, sizeof resume_path, err,
                                  sizeof err)) {
            fprintf(stderr, "lawt_dist: %s\n", err);
            decision.exit_status = 2;
        } else if (cfg->dir[0] &&
                   (decision.exit_status = trainer_claim_run_dir(cfg->dir, !a.resume && !a.evaluate,
                                                                 err, sizeof err)) != 0) {
            fprintf(stderr, "lawt_dist: %s\n", err);
        } else {
            decision.exit_status = -1;
            text = config_to_ini(cfg);
            decision.dry_run = a.dry_run;
            decision.memory_plan = a.memory_plan;
            if (a.evaluate) snprintf(evaluate_path, sizeof evaluate_path, "%s", a.evaluate);
            if (a.dump) snprintf(dump_path, sizeof dump_path, "%s", a.dump);
        }
    }
    comm_broadcast(c, &decision, sizeof decision, 0);
    if (decision.exit_status >= 0) {
        free(cfg);
        comm_finalize(c);
        return decision.exit_status;
    }

    char *shared_text = comm_broadcast_string(c, text ? text : "", 0);
    char *shared_resume = comm_broadcast_string(c, resume_path, 0);
    char *shared_evaluate = comm_broadcast_string(c, evaluate_path, 0);
    char err[2048];
    config_init(cfg);
    if (config_parse_string(cfg, shared_text, "configuration from rank 0", err, sizeof err) ||
        config_finish(cfg, err, sizeof err))
        comm_abort(c, 1, "%s", err);
    trainer_options opt = {shared_text, shared_resume[0] ? shared_resume : NULL,
                           shared_evaluate[0] ? shared_evaluate : NULL,
                           dump_path[0] ? dump_path : NULL, /* one rank: rank 0's */
                           decision.dry_run, decision.memory_plan};
    int status = trainer_run(cfg, &opt, c);

    free(text);
    free(shared_text);
    free(shared_resume);
    free(shared_evaluate);
    free(cfg);
    comm_finalize(c);
    return status;
}
