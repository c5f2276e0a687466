/* test_datagen_config: datagen_set accepts every key and rejects bad values with a message
 * naming the key, the value and what is allowed, leaving the config untouched; validation of
 * inconsistent configs; size bounds; law names. */
#include "datagen/datagen.h"
#include "tests/test.h"

#include <string.h>

/* datagen_set must fail, leave cfg as it was, and say every one of `words`. */
static void check_rejects(const char *key, const char *value, const char *w1, const char *w2,
                          const char *w3)
{
    datagen_config cfg, before;
    datagen_default(&cfg);
    before = cfg;
    char err[512] = "";
    int rc = datagen_set(&cfg, key, value, err, sizeof err);
    CHECK_MSG(rc == -1, "%s=%s accepted", key, value);
    CHECK_MSG(memcmp(&cfg, &before, sizeof cfg) == 0, "%s=%s changed the config", key, value);
    const char *words[3] = {w1, w2, w3};
    for (int i = 0; i < 3; i++)
        if (words[i])
            CHECK_MSG(strstr(err, words[i]) != NULL, "%s=%s: '%s' not in \"%s\"", key, value,
                      words[i], err);
}

static void check_invalid(const datagen_config *cfg, const char *w1, const char *w2)
{
    char err[512] = "";
    CHECK_MSG(datagen_validate(cfg, err, sizeof err) == -1, "invalid config accepted (%s)", w1);
    CHECK_MSG(strstr(err, w1) != NULL, "'%s' not in \"%s\"", w1, err);
    if (w2) CHECK_MSG(strstr(err, w2) != NULL, "'%s' not in \"%s\"", w2, err);
}

static void set(datagen_config *cfg, const char *key, const char *value)
{
    char err[512];
    CHECK_MSG(datagen_set(cfg, key, value, err, sizeof err) == 0, "%s=%s: %s", key, value, err);
}

static void test_set_errors(void)
{
    check_rejects("task", "frob", "task", "'frob'", "transpose, add");
    check_rejects("task", "add,frob", "task", "'frob'", "comma-separated");
    check_rejects("task", "add,add", "task", "'add'", "twice");
    check_rejects("task", "", "task", "''", "transpose");
    check_rejects("task_token", "3", "task_token", "'3'", "0, 1, 2");
    check_rejects("dim", "0", "dim", "'0'", "1 <= N <= M <= 100");
    check_rejects("dim", "15-5", "dim", "'15-5'", "range");
    check_rejects("dim", "five", "dim", "'five'", NULL);
    check_rejects("dim2", "101", "dim2", "'101'", "1 <= N");
    check_rejects("law", "cauchy", "law", "'cauchy'", "uniform, gaussian, laplace, uniform_mixed");
    check_rejects("bound", "-3", "bound", "'-3'", "> 0");
    check_rejects("bound", "1e999", "bound", "'1e999'", "> 0");
    check_rejects("eig_scale", "0", "eig_scale", "'0'", "> 0");
    check_rejects("noise", "-0.01", "noise", "'-0.01'", ">= 0");
    check_rejects("noise", "nan", "noise", "'nan'", ">= 0");
    check_rejects("in_digits", "16", "in_digits", "'16'", "0 for no rounding");
    check_rejects("out_digits", "x", "out_digits", "'x'", NULL);
    check_rejects("eig_law", "cauchy", "eig_law", "'cauchy'", "semicircle, positive");
    check_rejects("bound_max", "0.5", "bound_max", "'0.5'", ">= 1");
    check_rejects("eig_law", "laplace:-1", "eig_law", "'-1'", ">= 0");
    check_rejects("eig_law", "laplace:x", "eig_law", "'x'", NULL);
    check_rejects("eig_law", "gaussian:0", "eig_law", "sum to 0", "mixture");
    check_rejects("eig_law", "laplace,laplace", "eig_law", "twice", NULL);
    check_rejects("colour", "blue", "unknown key", "'colour'",
                  "task, task_token, dim, dim2, law, bound, bound_max, eig_law, eig_scale, noise, in_digits, "
                  "out_digits");
}

static void test_set_values(void)
{
    datagen_config cfg;
    datagen_default(&cfg);
    CHECK(cfg.ntasks == 1 && cfg.tasks[0] == TASK_TRANSPOSE && cfg.rows_min == 5 &&
          cfg.rows_max == 5);
    CHECK(cfg.cols_max == 0 && cfg.law == COEF_UNIFORM && cfg.bound == 10 && cfg.eig_scale == 1);
    CHECK(cfg.in_digits == 3 && cfg.out_digits == 3 && cfg.noise == 0 && cfg.task_token == 0);
    set(&cfg, "task", "eigenvalues");
    CHECK(cfg.ntasks == 1 && cfg.tasks[0] == TASK_EIGENVALUES && cfg.task_token == 0);
    set(&cfg, "task", "add, matmul");
    CHECK(cfg.ntasks == 2 && cfg.tasks[0] == TASK_ADD && cfg.tasks[1] == TASK_MATMUL);
    CHECK(cfg.task_token == 1); /* joint training */
    set(&cfg, "dim", "5-15");
    CHECK(cfg.rows_min == 5 && cfg.rows_max == 15);
    set(&cfg, "dim2", "7");
    CHECK(cfg.cols_min == 7 && cfg.cols_max == 7);
    set(&cfg, "law", "laplace");
    CHECK(cfg.law == COEF_LAPLACE);
    set(&cfg, "bound", "100");
    set(&cfg, "eig_scale", "0.6");
    set(&cfg, "noise", "0.05");
    set(&cfg, "in_digits", "4");
    set(&cfg, "out_digits", "0");
    CHECK(cfg.bound == 100 && cfg.eig_scale == 0.6 && cfg.noise == 0.05 && cfg.in_digits == 4 &&
          cfg.out_digits == 0);
    set(&cfg, "eig_law", "gaussian:1,uniform:2,laplace:0.5");
    CHECK(cfg.eig_weights[EIG_GAUSSIAN] == 1 && cfg.eig_weights[EIG_UNIFORM] == 2 &&
          cfg.eig_weights[EIG_LAPLACE] == 0.5 && cfg.eig_weights[EIG_SEMICIRCLE] == 0);
    set(&cfg, "eig_law", "marchenko_pastur");
    CHECK(cfg.eig_weights[EIG_MARCHENKO_PASTUR] == 1 && cfg.eig_weights[EIG_GAUSSIAN] == 0);
    set(&cfg, "eig_law", "wigner:3,abs_laplace:1");
    CHECK(cfg.eig_weights[EIG_WIGNER] == 3 && cfg.eig_weights[EIG_ABS_LAPLACE] == 1 &&
          cfg.eig_weights[EIG_LAPLACE] == 0);
    set(&cfg, "bound_max", "1000");
    CHECK(cfg.bound_max == 1000);
    set(&cfg, "eig_law", "none");
    for (int l = 0; l < EIG_LAW_COUNT; l++) CHECK(cfg.eig_weights[l] == 0);
    set(&cfg, "task_token", "0");
    CHECK(cfg.task_token == 0);

    for (int l = 0; l < COEF_LAW_COUNT; l++)
        CHECK(coef_law_from_name(coef_law_name((coef_law)l)) == l);
    for (int l = 0; l < EIG_LAW_COUNT; l++) CHECK(eig_law_from_name(eig_law_name((eig_law)l)) == l);
    CHECK(coef_law_from_name("wigner") == -1 && eig_law_from_name("cauchy") == -1);
}

static void test_validate(void)
{
    datagen_config cfg;
    char err[512];
    datagen_default(&cfg);
    CHECK(datagen_validate(&cfg, err, sizeof err) == 0);
    set(&cfg, "eig_law", "laplace");
    check_invalid(&cfg, "eig_law", "transpose");
    set(&cfg, "task", "eigenvalues,eigenvectors");
    CHECK(datagen_validate(&cfg, err, sizeof err) == 0);
    cfg.task_token = 0;
    check_invalid(&cfg, "task_token", NULL);

    datagen_default(&cfg);
    set(&cfg, "task", "inversion");
    set(&cfg, "dim2", "6");
    check_invalid(&cfg, "dim2", "inversion");

    datagen_default(&cfg);
    set(&cfg, "task", "add");
    set(&cfg, "dim2", "51");
    check_invalid(&cfg, "add", "V100"); /* [M | N] is 102 columns */
    set(&cfg, "dim2", "50");
    CHECK(datagen_validate(&cfg, err, sizeof err) == 0);

    datagen_default(&cfg);
    set(&cfg, "task", "svd");
    set(&cfg, "dim", "40-50");
    set(&cfg, "dim2", "50");
    check_invalid(&cfg, "svd", "V100"); /* 1 + 50 + 50 rows */
    set(&cfg, "dim", "49");
    CHECK(datagen_validate(&cfg, err, sizeof err) == 0);

    datagen_default(&cfg);
    cfg.noise = -1;
    check_invalid(&cfg, "noise", NULL);
}

static void test_sizes(void)
{
    lawt_encoding p1000, fp15;
    encoding_from_name("P1000", &p1000);
    encoding_from_name("FP15", &fp15);
    datagen_config cfg;
    datagen_default(&cfg);
    CHECK(datagen_max_input_coeffs(&cfg) == 25 && datagen_max_output_coeffs(&cfg) == 25);
    CHECK(datagen_max_src_len(&cfg, &p1000) == 2 + 2 + 25 * 3);
    CHECK(datagen_max_tgt_len(&cfg, &fp15) == 2 + 2 + 25);
    set(&cfg, "task", "svd");
    set(&cfg, "dim", "3-5");
    set(&cfg, "dim2", "2-3");
    CHECK(datagen_max_input_coeffs(&cfg) == 15 &&
          datagen_max_output_coeffs(&cfg) == (1 + 5 + 3) * 3);
    set(&cfg, "task", "matvec,svd");
    CHECK(datagen_max_input_coeffs(&cfg) == 5 * 4);
    CHECK(datagen_max_src_len(&cfg, &p1000) == 2 + 1 + 2 + 20 * 3); /* with the task token */
    datagen_default(&cfg);
    set(&cfg, "task", "eigenvectors");
    set(&cfg, "dim", "5-15");
    CHECK(datagen_max_input_coeffs(&cfg) == 225 && datagen_max_output_coeffs(&cfg) == 16 * 15);
}

/* common.h's task table: the shapes of README's task table for a 3 x 5 problem (4 x 4 for the
 * square tasks), and inputs no problem has. */
static void test_task_table(void)
{
    static const struct {
        lawt_task task;
        int m, n, in_rows, in_cols, out_rows, out_cols;
    } SHAPES[] = {
        {TASK_TRANSPOSE, 3, 5, 3, 5, 5, 3},      {TASK_ADD, 3, 5, 3, 10, 3, 5},
        {TASK_MATVEC, 3, 5, 3, 6, 5, 1},         {TASK_MATMUL, 3, 5, 3, 10, 5, 5},
        {TASK_EIGENVALUES, 4, 4, 4, 4, 4, 1},    {TASK_EIGENVECTORS, 4, 4, 4, 4, 5, 4},
        {TASK_SINGULARVALUES, 3, 5, 3, 5, 3, 1}, {TASK_SVD, 3, 5, 3, 5, 9, 3},
        {TASK_INVERSION, 4, 4, 4, 4, 4, 4},
    };
    CHECK(sizeof SHAPES / sizeof SHAPES[0] == LAWT_TASK_COUNT);
    for (int i = 0; i < LAWT_TASK_COUNT; i++) {
        lawt_task t = SHAPES[i].task;
        int r, c, m, n;
        task_input_shape(t, SHAPES[i].m, SHAPES[i].n, &r, &c);
        CHECK_MSG(r == SHAPES[i].in_rows && c == SHAPES[i].in_cols, "%s input %dx%d",
                  task_name(t), r, c);
        task_output_shape(t, SHAPES[i].m, SHAPES[i].n, &r, &c);
        CHECK_MSG(r == SHAPES[i].out_rows && c == SHAPES[i].out_cols, "%s output %dx%d",
                  task_name(t), r, c);
        CHECK_MSG(task_problem_of_input(t, SHAPES[i].in_rows, SHAPES[i].in_cols, &m, &n) == 0 &&
                      m == SHAPES[i].m && n == SHAPES[i].n,
                  "%s problem of its input", task_name(t));
        CHECK(task_from_name(task_name(t)) == (int)t);
    }
    int m, n;
    CHECK(task_problem_of_input(TASK_ADD, 3, 9, &m, &n) < 0);         /* odd: not [M | N] */
    CHECK(task_problem_of_input(TASK_MATVEC, 3, 1, &m, &n) < 0);      /* v without M */
    CHECK(task_problem_of_input(TASK_EIGENVALUES, 3, 4, &m, &n) < 0); /* not square */
    CHECK(task_problem_of_input(TASK_TRANSPOSE, 0, 4, &m, &n) < 0);
    CHECK(strcmp(task_names_list(), "transpose, add, matvec, matmul, eigenvalues, eigenvectors, "
                                    "singularvalues, svd, inversion") == 0);
}

int main(void)
{
    test_task_table();
    test_set_errors();
    test_set_values();
    test_validate();
    test_sizes();
    return test_report("test_datagen_config");
}
