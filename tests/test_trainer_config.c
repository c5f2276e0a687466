/* test_trainer_config: the configuration of lawt_dist (keys, errors naming file, line and key,
 * overrides, aliases, the resolved text round trip), files it must refuse (a directory, a NUL
 * byte, an over-long line, a key or section given twice, counts that overflow), the allowed
 * ranges --help-config prints against what each key really accepts, and the learning-rate
 * schedules. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/test.h"
#include "trainer/trainer.h"

static char err[4096];

static int parse(trainer_config *cfg, const char *text)
{
    config_init(cfg);
    err[0] = '\0';
    if (config_parse_string(cfg, text, "test.ini", err, sizeof err)) return -1;
    return config_finish(cfg, err, sizeof err);
}

static int err_has(const char *needle)
{
    int found = strstr(err, needle) != NULL;
    if (!found) fprintf(stderr, "message '%s' lacks '%s'\n", err, needle);
    return found;
}

static void test_defaults(void)
{
    trainer_config cfg;
    CHECK(parse(&cfg, "") == 0);
    CHECK(cfg.batch_size == 0 && cfg.batch_per_rank == 0); /* 64 once resolved */
    CHECK(cfg.epoch_size == 300000);
    CHECK(cfg.lr == 1e-4 && cfg.lr_min == 1e-5 && cfg.warmup == 10000);
    CHECK(cfg.schedule == SCHEDULE_COSINE && cfg.clip == 5.0);
    CHECK(cfg.beta1 == 0.9 && cfg.beta2 == 0.999 && cfg.eps == 1e-8);
    CHECK(cfg.eval_size == 10000 && cfg.ntol == 4);
    CHECK(cfg.tol[0] == 0.05 && cfg.tol[3] == 0.005);
    CHECK(cfg.enc_dim == 512 && cfg.enc_heads == 8);
    CHECK(strcmp(cfg.encoding, "P1000") == 0);
    CHECK(cfg.data.tasks[0] == TASK_TRANSPOSE && cfg.data.rows_min == 5);
}

static void test_values(void)
{
    trainer_config cfg;
    CHECK(parse(&cfg, "# a comment\n[data]\ntask = add\ndim = 5-10\nencoding = FP15\n"
                      "out_encoding = P1000\n\n[model]\nlayers = 3 ; inline comment\n"
                      "dec_layers = 1\ndim = 64\nheads = 4\n[train]\nschedule = inverse_sqrt\n"
                      "seed = 18446744073709551615\n[eval]\ntolerances = 10, 1\n"
                      "decode = beam\n") == 0);
    CHECK(cfg.data.tasks[0] == TASK_ADD);
    CHECK(cfg.data.rows_min == 5 && cfg.data.rows_max == 10);
    /* FP15 and P1000 both keep 3 significant digits. */
    CHECK(cfg.data.in_digits == 3 && cfg.data.out_digits == 3);
    CHECK(cfg.enc_layers == 3 && cfg.dec_layers == 1); /* a later key overrides the alias */
    CHECK(cfg.enc_dim == 64 && cfg.dec_dim == 64 && cfg.enc_heads == 4 && cfg.dec_heads == 4);
    CHECK(cfg.schedule == SCHEDULE_INVERSE_SQRT && cfg.decoding == DECODING_BEAM);
    CHECK(cfg.seed == UINT64_MAX);
    CHECK(cfg.ntol == 2 && cfg.tol[0] == 0.10 && cfg.tol[1] == 0.01);
}

static void test_errors(void)
{
    trainer_config cfg;
    CHECK(parse(&cfg, "[train]\nlr = 1e-3\n\nfoo = 3\n") < 0);
    CHECK(err_has("test.ini:4:") && err_has("unknown key 'foo' in [train]") &&
          err_has("batch_size"));
    CHECK(parse(&cfg, "[trian]\nlr = 1e-3\n") < 0);
    CHECK(err_has("test.ini:1:") && err_has("unknown section [trian]") && err_has("[train]"));
    CHECK(parse(&cfg, "[train]\nlr = fast\n") < 0);
    CHECK(err_has("test.ini:2:") && err_has("[train] lr = 'fast'") &&
          err_has("allowed: number in (0, 1]"));
    CHECK(parse(&cfg, "[train]\nlr = 0\n") < 0);
    CHECK(err_has("out of range"));
    CHECK(parse(&cfg, "[train]\nbatch_size = 12.5\n") < 0);
    CHECK(err_has("not an integer"));
    CHECK(parse(&cfg, "[train]\nschedule = linear\n") < 0);
    CHECK(err_has("cosine|constant|inverse_sqrt"));
    CHECK(parse(&cfg, "[data]\ndim = 5\ntask = invert\n") < 0);
    CHECK(err_has("test.ini:3:") && err_has("[data] task = 'invert'") && err_has("inversion"));
    CHECK(parse(&cfg, "[data]\nencoding = P7\n") < 0);
    CHECK(err_has("test.ini:2:") && err_has("FP15"));
    CHECK(parse(&cfg, "[eval]\ntolerances = 5,abc\n") < 0);
    CHECK(err_has("[eval] tolerances"));
    CHECK(parse(&cfg, "[eval]\ntolerances = 1,2,3,4,5,6,7,8,9\n") < 0);
    CHECK(parse(&cfg, "[model]\nlayers = 0\n") < 0);
    CHECK(err_has("enc_layers") && err_has("integer in [1, 256]"));
    CHECK(parse(&cfg, "[data\ntask = add\n") < 0);
    CHECK(err_has("test.ini:1:") && err_has("syntax error"));
    CHECK(parse(&cfg, "lr = 1\n") < 0);
    CHECK(err_has("outside any section"));
    /* Cross-key checks name the keys. */
    CHECK(parse(&cfg, "[model]\nenc_dim = 100\nenc_heads = 8\n") < 0);
    CHECK(err_has("enc_dim") && err_has("enc_heads"));

    config_init(&cfg);
    CHECK(config_parse_file(&cfg, "/nonexistent/x.ini", err, sizeof err) < 0);
    CHECK(err_has("/nonexistent/x.ini") && err_has("cannot open"));
    CHECK(config_set_assignment(&cfg, "train.lr", err, sizeof err) < 0);
    CHECK(err_has("section.key=value"));
    CHECK(config_set_assignment(&cfg, "train.nope=1", err, sizeof err) < 0);
    CHECK(err_has("--set train.nope=1") && err_has("unknown key 'nope'"));
    CHECK(config_set_assignment(&cfg, "model.enc_layers=6", err, sizeof err) == 0);
    CHECK(cfg.enc_layers == 6);
}

/* The architecture keys (issue 17): universal transformers parse into the model config;
 * inconsistent loops are refused at config time, naming the keys. */
static void test_architecture(void)
{
    trainer_config cfg;
    CHECK(parse(&cfg, "") == 0);
    CHECK(cfg.arch == ARCH_TRANSFORMER && cfg.enc_loops == 0 && cfg.dec_loops == 0);
    CHECK(cfg.loop_mode == LOOP_FIXED && cfg.act_threshold == 0.99 && cfg.ponder_cost == 0.01);
    CHECK(parse(&cfg, "[model]\narch = universal\nlayers = 1\nenc_loops = 4\nloop_mode = act\n"
                      "act_threshold = 0.9\nponder_cost = 0.05\n") == 0);
    model_config mc = config_model(&cfg);
    CHECK(mc.arch == ARCH_UNIVERSAL && mc.enc_loops == 4 && mc.dec_loops == 0);
    CHECK(mc.loop_mode == LOOP_ACT && mc.act_threshold == 0.9 && mc.ponder_cost == 0.05);
    CHECK(model_config_validate(&mc, err, sizeof err) == 0);
    CHECK(parse(&cfg, "[model]\narch = gru\nenc_loops = 2\n") < 0);
    CHECK(err_has("enc_loops = 2") && err_has("arch = universal"));
    CHECK(parse(&cfg, "[model]\narch = rnn\n") < 0);
    CHECK(err_has("transformer|universal|lstm|gru"));
    CHECK(parse(&cfg, "[model]\nenc_loops = 4\n") < 0);
    CHECK(err_has("enc_loops = 4") && err_has("arch = universal"));
    CHECK(parse(&cfg, "[model]\nloop_mode = gated\n") < 0);
    CHECK(err_has("loop_mode = gated") && err_has("arch = universal"));
    CHECK(parse(&cfg, "[model]\narch = universal\n") < 0);
    CHECK(err_has("enc_loops > 0"));
    CHECK(parse(&cfg, "[model]\narch = universal\nlayers = 2\ndec_loops = 3\n") < 0);
    CHECK(err_has("dec_loops = 3") && err_has("dec_layers = 1 (got 2)"));
    CHECK(parse(&cfg, "[model]\narch = universal\nlayers = 1\nenc_loops = 2\n"
                      "recompute = ffn\n") < 0);
    CHECK(err_has("recompute = ffn"));
    CHECK(parse(&cfg, "[model]\nact_threshold = 0\n") < 0);
    CHECK(err_has("act_threshold") && err_has("(0, 1]"));
}

/* A file with the given bytes (NULs included), parsed. */
static int parse_bytes(trainer_config *cfg, const char *bytes, size_t n)
{
    char path[] = "/tmp/lawt-test-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, bytes, n) != (ssize_t)n) {
        perror("test file");
        exit(1);
    }
    close(fd);
    config_init(cfg);
    err[0] = '\0';
    int rc = config_parse_file(cfg, path, err, sizeof err);
    unlink(path);
    return rc;
}

/* Issue 11: files that were accepted and should not be, and indented keys. */
static void test_refused_files(void)
{
    static trainer_config cfg;
    config_init(&cfg);
    CHECK(config_parse_file(&cfg, "/tmp", err, sizeof err) < 0);
    CHECK(err_has("/tmp: is a directory"));

    static const char nul[] = "[model]\nenc_layers = 2\n\ndec_layers = 1\0 3\n";
    CHECK(parse_bytes(&cfg, nul, sizeof nul - 1) < 0);
    CHECK(err_has(":4: NUL byte at column 15"));

    /* The longest line inih takes is accepted; one more character is refused at its own line
     * (it used to be cut, its rest read as the next line). */
    char text[1024];
    int n = snprintf(text, sizeof text, "[run]\ndir = ");
    while (n < 6 + 198) text[n++] = 'd';
    snprintf(text + n, sizeof text - (size_t)n, "\n[eval]\nsize = 7\n");
    CHECK(parse(&cfg, text) == 0 && strlen(cfg.dir) == 198 - 6 && cfg.eval_size == 7);
    n = snprintf(text, sizeof text, "[run]\n; a comment\n; ");
    while (n < 6 + 12 + 199) text[n++] = 'c';
    snprintf(text + n, sizeof text - (size_t)n, "\n[eval]\nsize = 7\n");
    CHECK(parse(&cfg, text) < 0);
    CHECK(err_has("test.ini:3: line of 199 characters; lines are at most 198"));

    /* The resolved text must parse back: "dir =x..." fits a line, "dir = x..." would not
     * (found by fuzz_config); --set values that inih would cut or strip. */
    n = snprintf(text, sizeof text, "[run]\ndir =");
    while (n < 6 + 198) text[n++] = 'd';
    text[n] = '\0';
    CHECK(parse(&cfg, text) < 0);
    CHECK(err_has("test.ini:2: [run] dir = 'ddd") && err_has("must fit in a line of 198"));
    config_init(&cfg);
    CHECK(config_set_assignment(&cfg, "run.dir=runs/a ;b", err, sizeof err) < 0);
    CHECK(err_has("would start a comment"));
    CHECK(parse(&cfg, "[run]\ndir =;x\n") < 0); /* inih keeps ";x"; "dir = ;x" would be empty */
    CHECK(err_has("test.ini:2:") && err_has("would start a comment"));
    CHECK(config_set_assignment(&cfg, "run.dir=runs/a\n[train]", err, sizeof err) < 0);
    CHECK(err_has("control character (code 10)"));
    CHECK(config_set_assignment(&cfg, "run.dir=runs/a ", err, sizeof err) < 0);
    CHECK(err_has("blanks around a value"));
    CHECK(config_set_assignment(&cfg, "run.dir=runs/a;b c", err, sizeof err) == 0);

    /* Leading blanks: an indented key is a key, not a continuation of the previous value. */
    CHECK(parse(&cfg, "[data]\n  task = add\n[model]\nheads = 1\n\t dim = 3\n") == 0);
    CHECK(cfg.data.tasks[0] == TASK_ADD && cfg.enc_dim == 3 && cfg.dec_dim == 3);
    CHECK(parse(&cfg, "[model]\r\nenc_layers = 2\r\n") == 0 && cfg.enc_layers == 2);
    CHECK(parse(&cfg, "\xEF\xBB\xBF[model]\nenc_layers = 2\n[model]\n") < 0);
    CHECK(err_has("test.ini:3: section [model] given twice (lines 1 and 3)"));
    CHECK(parse(&cfg, "\xEF\xBB\xBF  [model]\nenc_layers = 5\n") == 0 && cfg.enc_layers == 5);

    CHECK(parse(&cfg, "[model]\ndim = 64\n; again\n dim = 32\n") < 0);
    CHECK(err_has("test.ini:4: [model] dim given twice (lines 2 and 4)"));
    CHECK(parse(&cfg, "[train]\nlr = 1e-3\n[model]\ndim = 64\n[train]\nepochs = 3\n") < 0);
    CHECK(err_has("test.ini:5: section [train] given twice (lines 1 and 5)"));
    /* An alias then one of its keys is the documented override, not a duplicate. */
    CHECK(parse(&cfg, "[model]\nlayers = 2\nenc_layers = 3\n") == 0 && cfg.enc_layers == 3);
    /* --set still overrides a file's value. */
    CHECK(config_set_assignment(&cfg, "model.enc_layers=4", err, sizeof err) == 0 &&
          cfg.enc_layers == 4);

    /* Steps and examples must fit the trainer's 64-bit counters. */
    CHECK(parse(&cfg, "[train]\nepoch_size = 1000000000000000000\nepochs = 1000000000\n") < 0);
    CHECK(err_has("epoch_size = 1000000000000000000 x epochs = 1000000000") &&
          err_has("overflow"));
    CHECK(parse(&cfg, "[train]\nepoch_size = 9223372036854775807\nepochs = 1\n") < 0);
    CHECK(err_has("train.epoch_size or train.epochs"));
    CHECK(parse(&cfg, "[train]\nepoch_size = 100000000000000000\nepochs = 90\n") == 0);
    CHECK(parse(&cfg, "[eval]\nsize = 9000000000000000000\n[train]\nepochs = 2\n") < 0);
    CHECK(err_has("[eval] size"));

    /* A model that cannot fit in memory is refused before any allocation, its keys named. */
    CHECK(parse(&cfg, "") == 0 && config_resolve_batch(&cfg, 1, err, sizeof err) == 0);
    CHECK(config_check_memory(&cfg, 1, err, sizeof err) == 0);
    CHECK(parse(&cfg, "[model]\ndim = 65536\nheads = 1\n") == 0);
    CHECK(config_resolve_batch(&cfg, 1, err, sizeof err) == 0);
    CHECK(config_check_memory(&cfg, 1, err, sizeof err) < 0);
    CHECK(err_has("enc_dim = 65536, dec_dim = 65536") && err_has("bytes") &&
          err_has("lower model.dim"));
    CHECK(parse(&cfg, "[model]\ndim = 64\nheads = 1\n[train]\nbatch_size = 16000000\n") == 0);
    CHECK(config_check_memory(&cfg, 1, err, sizeof err) < 0);
    CHECK(err_has("16000000 examples a rank") && err_has("lower train.batch_size"));
}

static int accepts(const char *key, const char *value)
{
    static trainer_config cfg;
    char assignment[256], why[1024];
    snprintf(assignment, sizeof assignment, "%s=%s", key, value);
    config_init(&cfg);
    return config_set_assignment(&cfg, assignment, why, sizeof why) == 0;
}

/* What a key accepts at the ends of its range, against the range --help-config prints. */
static void expect_end(const char *key, const char *allowed, double v, int in)
{
    char value[64];
    snprintf(value, sizeof value, "%.17g", v);
    int got = accepts(key, value);
    CHECK_MSG(got == in, "%s = %s is %s, but --help-config says \"%s\"", key, value,
              got ? "accepted" : "refused", allowed);
}

/* Inside an open end: the next double, or a small number past 0 (the next double after 0 is
 * a denormal that strtod reports as an underflow). */
static double inside(double end, double toward)
{
    if (end == 0) return toward > 0 ? 1e-300 : -1e-300;
    return nextafter(end, toward);
}

static void test_allowed_text_matches_check(void)
{
    char *table = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&table, &size);
    config_print_help(f, 1);
    fclose(f);
    int numeric = 0;
    for (char *line = strtok(table, "\n"); line; line = strtok(NULL, "\n")) {
        char key[64], allowed[512];
        if (sscanf(line, "| `%63[^`]`", key) != 1) continue;
        char *a = strstr(line, " | "), *b = a ? strstr(a + 1, " | ") : NULL;
        char *c = b ? strstr(b + 1, " | ") : NULL;
        if (!c) continue;
        snprintf(allowed, sizeof allowed, "%.*s", (int)(c - b - 3), b + 3);
        double lo, hi;
        char open_lo, close_hi;
        if (strcmp(allowed, "integer in [0, 2^64)") == 0) {
            CHECK(accepts(key, "0") && accepts(key, "18446744073709551615"));
            CHECK(!accepts(key, "18446744073709551616") && !accepts(key, "-1") &&
                  !accepts(key, " -1"));
        } else if (sscanf(allowed, "integer in [%lf, %lf]", &lo, &hi) == 2) {
            expect_end(key, allowed, lo, 1);
            expect_end(key, allowed, lo - 1, 0);
            expect_end(key, allowed, hi, 1);
            expect_end(key, allowed, hi + 1, 0);
        } else if (sscanf(allowed, "integer >= %lf", &lo) == 1) {
            expect_end(key, allowed, lo, 1);
            expect_end(key, allowed, lo - 1, 0);
            CHECK_MSG(accepts(key, "9223372036854775807"), "%s: the largest long", key);
        } else if (sscanf(allowed, "number in %c%lf, %lf%c", &open_lo, &lo, &hi, &close_hi) == 4) {
            expect_end(key, allowed, lo, open_lo == '[');
            expect_end(key, allowed, inside(lo, open_lo == '[' ? -INFINITY : INFINITY),
                       open_lo == '(');
            expect_end(key, allowed, hi, close_hi == ']');
            expect_end(key, allowed, inside(hi, close_hi == ']' ? INFINITY : -INFINITY),
                       close_hi == ')');
        } else if (sscanf(allowed, "number >= %lf", &lo) == 1) {
            expect_end(key, allowed, lo, 1);
            expect_end(key, allowed, inside(lo, -INFINITY), 0);
            expect_end(key, allowed, 1e300, 1);
        } else if (sscanf(allowed, "number > %lf", &lo) == 1) {
            expect_end(key, allowed, lo, 0);
            expect_end(key, allowed, inside(lo, INFINITY), 1);
        } else {
            continue;
        }
        numeric++;
    }
    free(table);
    CHECK_MSG(numeric >= 20, "only %d numeric keys found in --help-config --markdown", numeric);
    /* [data] keys are checked by datagen, their allowed text written by hand. */
    CHECK(accepts("data.dim", "1") && accepts("data.dim", "100") && accepts("data.dim", "5-100"));
    CHECK(!accepts("data.dim", "0") && !accepts("data.dim", "101") && !accepts("data.dim", "6-5"));
    CHECK(accepts("data.bound", "0.5") && !accepts("data.bound", "0"));
    CHECK(accepts("data.eig_scale", "2") && !accepts("data.eig_scale", "0"));
    CHECK(accepts("data.noise", "0") && !accepts("data.noise", "-0.01"));
    CHECK(accepts("data.task_token", "2") && !accepts("data.task_token", "3"));
}

/* The resolved text parses back to the same configuration and the same text. */
static void test_round_trip(void)
{
    static trainer_config a, b;
    CHECK(parse(&a, "[data]\ntask = eigenvalues\ndim = 5-15\neig_law = laplace\nencoding = FP15\n"
                    "[model]\nenc_layers = 6\n[train]\nlr = 5e-4\n[run]\ndir = runs/x\n") == 0);
    char *text = config_to_ini(&a);
    CHECK(parse(&b, text) == 0);
    char *again = config_to_ini(&b);
    CHECK(strcmp(text, again) == 0);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    free(text);
    free(again);
}

static void test_schedule(void)
{
    trainer_config cfg;
    CHECK(parse(&cfg, "[train]\nlr = 1e-3\nlr_min = 1e-5\nwarmup = 100\n") == 0);
    long total = 1100;
    CHECK_CLOSE(schedule_lr(&cfg, 50, total), 5e-4, 1e-15);
    CHECK_CLOSE(schedule_lr(&cfg, 100, total), 1e-3, 1e-15);
    CHECK_CLOSE(schedule_lr(&cfg, 600, total), (1e-3 + 1e-5) / 2, 1e-15);
    CHECK_CLOSE(schedule_lr(&cfg, 1100, total), 1e-5, 1e-15);
    CHECK(schedule_lr(&cfg, 300, total) > schedule_lr(&cfg, 301, total));
    cfg.schedule = SCHEDULE_CONSTANT;
    CHECK_CLOSE(schedule_lr(&cfg, 1000, total), 1e-3, 1e-15);
    cfg.schedule = SCHEDULE_INVERSE_SQRT;
    CHECK_CLOSE(schedule_lr(&cfg, 400, total), 5e-4, 1e-15);
    CHECK_CLOSE(schedule_lr(&cfg, 50, total), 5e-4, 1e-15);

    /* The reference run of shared/reference-curves.md: adam_cosine, warmup_updates=1000,
     * lr=5e-4, min_lr=5e-5, init_period=37500, lr_shrink=0.1. */
    CHECK(parse(&cfg, "[train]\nschedule = cosine_period\nlr = 5e-4\nlr_min = 5e-5\n"
                      "warmup = 1000\ncosine_period = 37500\nlr_shrink = 0.1\n") == 0);
    CHECK(cfg.schedule == SCHEDULE_COSINE_PERIOD && cfg.cosine_period == 37500);
    for (long run = 10; run <= 10000000; run *= 1000) { /* the run's length plays no part */
        CHECK_CLOSE(schedule_lr(&cfg, 500, run), 2.5e-4, 1e-15);
        CHECK_CLOSE(schedule_lr(&cfg, 1000, run), 5e-4, 1e-15);
        CHECK_CLOSE(schedule_lr(&cfg, 1000 + 18750, run), 2.75e-4, 1e-15);
        CHECK_CLOSE(schedule_lr(&cfg, 1000 + 37499, run),
                    5e-5 + 0.5 * 4.5e-4 * (1 + cos(3.14159265358979323846 * 37499 / 37500)), 1e-15);
        CHECK_CLOSE(schedule_lr(&cfg, 1000 + 37500, run), 5e-5, 1e-15);      /* restart: 0.1 lr */
        CHECK_CLOSE(schedule_lr(&cfg, 1000 + 37500 + 18750, run), 2.75e-5, 1e-15);
        CHECK_CLOSE(schedule_lr(&cfg, 1000 + 2 * 37500, run), 5e-6, 1e-15); /* 0.01 lr */
    }
    CHECK(schedule_lr(&cfg, 1000 + 37501, 0) < schedule_lr(&cfg, 1000 + 37500, 0));
    CHECK(parse(&cfg, "[train]\nschedule = cosine_period\nlr_shrink = 0\n") < 0 &&
          err_has("lr_shrink"));
    CHECK(parse(&cfg, "[train]\nschedule = cosine_period\ncosine_period = 0\n") < 0 &&
          err_has("cosine_period"));
    CHECK(parse(&cfg, "[train]\nschedule = cosine_period\nlr = 1e-4\nlr_min = 1e-3\n") < 0 &&
          err_has("lr_min"));
}

/* eval.ood: each set is the training data with the law it names. */
static void test_ood(void)
{
    static trainer_config cfg;
    CHECK(parse(&cfg, "[data]\ntask = eigenvalues\nlaw = uniform_mixed\n"
                      "[eval]\nood = laplace, wigner@0.3,positive@0.6 , gaussian@1\n") == 0);
    CHECK(cfg.nood == 4);
    CHECK(strcmp(cfg.ood_name[0], "laplace") == 0 && strcmp(cfg.ood_name[1], "wigner@0.3") == 0 &&
          strcmp(cfg.ood_name[2], "positive@0.6") == 0 && strcmp(cfg.ood_name[3], "gaussian") == 0);
    CHECK(cfg.ood_data[0].eig_weights[EIG_LAPLACE] > 0 && cfg.ood_data[0].eig_scale == 1.0);
    CHECK(cfg.ood_data[1].eig_weights[EIG_LAPLACE] == 0 && cfg.ood_data[1].eig_weights[EIG_POSITIVE] == 0);
    CHECK_CLOSE(cfg.ood_data[1].bound, 3.0, 1e-12);
    CHECK(cfg.ood_data[2].eig_weights[EIG_POSITIVE] > 0 && cfg.ood_data[2].eig_scale == 0.6 &&
          cfg.ood_data[2].bound == 10.0);
    /* Table 12's test sets are at A = 10, whatever A the training law draws */
    for (int k = 0; k < cfg.nood; k++) CHECK(cfg.ood_data[k].law == COEF_UNIFORM);
    CHECK(cfg.data.law == COEF_UNIFORM_MIXED);
    CHECK(parse(&cfg, "[data]\ntask = transpose\n[eval]\nood = gaussian,laplace@2\n") == 0);
    CHECK(cfg.nood == 2 && cfg.ood_data[0].law == COEF_GAUSSIAN && cfg.ood_data[1].law == COEF_LAPLACE);
    CHECK_CLOSE(cfg.ood_data[1].bound, 20.0, 1e-12);
    CHECK(parse(&cfg, "[data]\ntask = transpose\n") == 0 && cfg.nood == 0);
    CHECK(parse(&cfg, "[data]\ntask = eigenvalues\n[eval]\nood = laplace, cauchy\n") < 0 &&
          err_has("[eval] ood = 'laplace, cauchy': unknown law 'cauchy' for eigenvalues") &&
          err_has("marchenko_pastur"));
    CHECK(parse(&cfg, "[data]\ntask = transpose\n[eval]\nood = positive\n") < 0 &&
          err_has("unknown law 'positive' for transpose") && err_has("uniform_mixed"));
    CHECK(parse(&cfg, "[data]\ntask = eigenvalues\n[eval]\nood = laplace,laplace@1\n") < 0 &&
          err_has("'laplace' is listed twice"));
    CHECK(parse(&cfg, "[data]\ntask = eigenvalues\n[eval]\nood = laplace@0\n") < 0 &&
          err_has("number > 0"));
    char many[512] = "[data]\ntask = eigenvalues\n[eval]\nood = laplace";
    for (int k = 2; k <= 17; k++) snprintf(many + strlen(many), sizeof many - strlen(many), ",laplace@%d", k);
    CHECK(parse(&cfg, many) < 0 && err_has("more than 16 sets"));
}

/* [data] values are parsed once, at their line; task_token follows the final task list. */
static void test_data_order(void)
{
    trainer_config cfg;
    CHECK(parse(&cfg, "[data]\ntask = add,matmul\n") == 0);
    CHECK(cfg.data.ntasks == 2 && cfg.data.task_token == 1);
    CHECK(parse(&cfg, "[data]\ntask_token = 1\ntask = add\n") == 0 && cfg.data.task_token == 1);
    CHECK(parse(&cfg, "[data]\ntask_token = 0\ntask = add,matmul\n") < 0 && err_has("task_token"));
    CHECK(parse(&cfg, "[data]\ntask = add\ndim2 =\nlaw =\n") == 0);
    CHECK(cfg.data.cols_max == 0 && cfg.data.law == COEF_UNIFORM); /* empty: the default */
    CHECK(parse(&cfg, "[data]\ndim = 0\n") < 0 && err_has("test.ini:2") && err_has("dim"));
}

/* train.batch_size or train.batch_per_rank, settled for a number of ranks. */
static void test_batch_resolution(void)
{
    trainer_config cfg;
    CHECK(parse(&cfg, "") == 0 && config_resolve_batch(&cfg, 4, err, sizeof err) == 0);
    CHECK(cfg.batch_size == 64);
    CHECK(parse(&cfg, "[train]\nbatch_per_rank = 64\n") == 0);
    CHECK(config_resolve_batch(&cfg, 4, err, sizeof err) == 0);
    CHECK(cfg.batch_size == 256 && cfg.batch_per_rank == 0);
    /* the resolved text is the global batch, as a checkpoint keeps it */
    char *text = config_to_ini(&cfg);
    CHECK(strstr(text, "batch_size = 256") && strstr(text, "batch_per_rank = 0"));
    free(text);
    CHECK(parse(&cfg, "[train]\nbatch_per_rank = 4\nbatch_size = 16\n") == 0);
    CHECK(config_resolve_batch(&cfg, 4, err, sizeof err) < 0 && err_has("batch_per_rank = 4") &&
          err_has("set one of them"));
    CHECK(parse(&cfg, "[train]\nbatch_size = 10\n") == 0);
    CHECK(config_resolve_batch(&cfg, 4, err, sizeof err) < 0 && err_has("batch_size = 10") &&
          err_has("4 ranks"));
}

/* The bounded builder of the trainer's log lines and metrics records: text past the capacity
 * is cut (an --evaluate path of 1,000 characters once wrote past a 1,024-byte line). */
static void test_text_builder(void)
{
    char buf[16 + 8];
    memset(buf, 'X', sizeof buf);
    lawt_text t = {buf, 16, 0};
    lawt_appendf(&t, "%s", "0123456789");
    CHECK(t.len == 10 && strcmp(buf, "0123456789") == 0);
    char path[1001];
    memset(path, 'p', 1000);
    path[1000] = '\0';
    lawt_appendf(&t, "eval %s", path);
    CHECK(t.len == 15 && strlen(buf) == 15 && strncmp(buf, "0123456789eval ", 15) == 0);
    lawt_appendf(&t, "more");
    CHECK(t.len == 15 && buf[15] == '\0');
    for (size_t i = 16; i < sizeof buf; i++) CHECK(buf[i] == 'X'); /* nothing past the end */
}

int main(void)
{
    test_text_builder();
    test_data_order();
    test_defaults();
    test_values();
    test_errors();
    test_architecture();
    test_refused_files();
    test_allowed_text_matches_check();
    test_round_trip();
    test_schedule();
    test_ood();
    test_batch_resolution();
    return test_report("test_trainer_config");
}
