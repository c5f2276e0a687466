/* test_trainer_config: the configuration of lawt_dist (keys, errors naming file, line and key,
 * overrides, aliases, the resolved text round trip) and the learning-rate schedules. */
#include <string.h>

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
    CHECK(cfg.batch_size == 64);
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
    CHECK(parse(&cfg, "[data]\ntask = transpose\ntask = invert\n") < 0);
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
}

/* [data] values are parsed once, at their line; task_token follows the final task list. */
static void test_data_order(void)
{
    trainer_config cfg;
    CHECK(parse(&cfg, "[data]\ntask = add,matmul\ntask = add\n") == 0);
    CHECK(cfg.data.ntasks == 1 && cfg.data.task_token == 0);
    CHECK(parse(&cfg, "[data]\ntask_token = 1\ntask = add\n") == 0 && cfg.data.task_token == 1);
    CHECK(parse(&cfg, "[data]\ntask_token = 0\ntask = add,matmul\n") < 0 && err_has("task_token"));
    CHECK(parse(&cfg, "[data]\ndim2 = 3\ntask = add\ndim2 =\nlaw =\n") == 0);
    CHECK(cfg.data.cols_max == 0 && cfg.data.law == COEF_UNIFORM); /* empty: the default */
    CHECK(parse(&cfg, "[data]\ndim = 0\n") < 0 && err_has("test.ini:2") && err_has("dim"));
}

int main(void)
{
    test_data_order();
    test_defaults();
    test_values();
    test_errors();
    test_round_trip();
    test_schedule();
    return test_report("test_trainer_config");
}
