/* lawt_datagen: prints random problems as the model sees them (tokens) or readably (text), or
 * the eigenvalue standard deviation of the generated symmetric matrices (Appendix H). */
#include "datagen/datagen.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: lawt_datagen --task T --encoding E [--out-encoding E2] [--dim 5 | --dims 5-15]\n"
    "                    [--dim2 6] [--law L] [--bound A] [--eig-law L] [--eig-scale X]\n"
    "                    [--noise X] --count N --seed S [--stream train|test|ood]\n"
    "                    [--format tokens|text] [--stats]\n"
    "\n"
    "  --task T          transpose, add, matvec, matmul, eigenvalues, eigenvectors,\n"
    "                    singularvalues, svd, inversion; several comma-separated for joint\n"
    "                    training (the source then starts with the task token)\n"
    "  --encoding E      P10, P100, P1000, P10000, B1999, FP15 (input; output too by default)\n"
    "  --out-encoding E2 the output's encoding\n"
    "  --dim D           rows of M: 5, or 5-15 to draw the size of each example (default 5)\n"
    "  --dims R          the same as --dim R (variable sizes, e.g. 5-15)\n"
    "  --dim2 D          columns of M (rectangular; default: square)\n"
    "  --law L           coefficients: uniform (default), gaussian, laplace, uniform_mixed\n"
    "                    (uniform in [-A', A'], A' drawn in [1, 100] per matrix)\n"
    "  --bound A         coefficients of std A/sqrt(3); uniform in [-A, A] (default 10)\n"
    "  --eig-law L       eigenvalue law of symmetric inputs: semicircle, positive, uniform,\n"
    "                    gaussian, laplace, marchenko_pastur, or a mixture like\n"
    "                    gaussian:1,uniform:1,laplace:1 (default: none, a plain Wigner matrix)\n"
    "  --eig-scale X     eigenvalue rms as a ratio of the Wigner sigma A*sqrt(n/3) (default 1)\n"
    "  --noise X         gaussian noise on the input, a fraction of the coefficient std\n"
    "  --count N         number of examples\n"
    "  --seed S          seed; example i is a pure function of (seed, stream, i)\n"
    "  --stream S        train (default), test or ood\n"
    "  --format F        tokens (default): input tokens, TAB, output tokens, one a line;\n"
    "                    text: the matrices\n"
    "  --stats           the mean and standard deviation of the eigenvalues of N examples\n"
    "                    (eigen tasks; Appendix H: 12.91, 18.26, 22.36, 25.81 for n = 5, 10,\n"
    "                    15, 20 with A = 10)\n";

static void usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lawt_datagen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(lawt_datagen --help for the options)\n", stderr);
    va_end(ap);
    exit(2);
}

static uint64_t parse_u64(const char *flag, const char *s, uint64_t min)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-' || v < min)
        usage_error("%s: bad value '%s' (allowed: an integer >= %llu)", flag, s,
                    (unsigned long long)min);
    return v;
}

static void print_matrix(const char *title, const lawt_matrix *m, int digits)
{
    printf("%s %dx%d\n", title, m->rows, m->cols);
    for (int i = 0; i < m->rows; i++) {
        for (int j = 0; j < m->cols; j++) printf(" %11.*g", digits, MAT(m, i, j));
        putchar('\n');
    }
}

/* Mean and std of all the eigenvalues of `count` examples (eigen tasks). */
static void print_stats(const datagen_config *cfg, uint64_t seed, datagen_stream stream,
                        uint64_t count)
{
    size_t cap_in = datagen_max_input_coeffs(cfg), cap_out = datagen_max_output_coeffs(cfg);
    lawt_matrix in = {0, 0, lawt_malloc(cap_in * sizeof(double))};
    lawt_matrix out = {0, 0, lawt_malloc(cap_out * sizeof(double))};
    double sum = 0, sumsq = 0;
    uint64_t values = 0, redraws = 0;
    for (uint64_t i = 0; i < count; i++) {
        lawt_task task;
        redraws += (uint64_t)datagen_example(cfg, seed, stream, i, &in, &out, &task);
        for (int c = 0; c < out.cols && task == TASK_EIGENVECTORS; c++) {
            sum += out.a[c];
            sumsq += out.a[c] * out.a[c];
        }
        for (int r = 0; r < out.rows && task == TASK_EIGENVALUES; r++) {
            sum += out.a[r];
            sumsq += out.a[r] * out.a[r];
        }
        values += (uint64_t)(task == TASK_EIGENVALUES ? out.rows : out.cols);
    }
    double mean = sum / (double)values;
    double std = sqrt(fmax(0.0, sumsq / (double)values - mean * mean));
    printf("eigenvalues of %llu matrices (dim %d-%d, law %s, A = %g): mean %.4f, std %.4f\n",
           (unsigned long long)count, cfg->rows_min, cfg->rows_max, coef_law_name(cfg->law),
           cfg->bound, mean, std);
    if (cfg->rows_min == cfg->rows_max && cfg->law != COEF_UNIFORM_MIXED) {
        double sigma = cfg->eig_scale * cfg->bound * sqrt(cfg->rows_max / 3.0);
        printf("Wigner sigma = eig_scale*A*sqrt(n/3) = %.4f; std/sigma = %.4f\n", sigma,
               std / sigma);
    }
    printf("redraws: %llu\n", (unsigned long long)redraws);
    free(in.a);
    free(out.a);
}

int main(int argc, char **argv)
{
    datagen_config cfg;
    datagen_default(&cfg);
    const char *enc_name = NULL, *out_enc_name = NULL, *format = "tokens";
    int have_task = 0, have_count = 0, have_seed = 0, have_dim = 0, stats = 0;
    uint64_t count = 0, seed = 0;
    datagen_stream stream = STREAM_TRAIN;
    char err[512];

    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strcmp(flag, "--stats") == 0) {
            stats = 1;
            continue;
        }
        /* Every other flag takes a value. */
        static const char *const KEYED[][2] = {
            {"--task", "task"},       {"--dim", "dim"},
            {"--dims", "dim"},        {"--dim2", "dim2"},
            {"--law", "law"},         {"--bound", "bound"},
            {"--eig-law", "eig_law"}, {"--eig-scale", "eig_scale"},
            {"--noise", "noise"},
        };
        static const char *const OTHERS[] = {"--encoding", "--out-encoding", "--count",
                                             "--seed",     "--stream",       "--format"};
        const char *key = NULL;
        int known = 0;
        for (size_t k = 0; k < sizeof KEYED / sizeof KEYED[0]; k++)
            if (strcmp(flag, KEYED[k][0]) == 0) key = KEYED[k][1], known = 1;
        for (size_t k = 0; k < sizeof OTHERS / sizeof OTHERS[0]; k++)
            if (strcmp(flag, OTHERS[k]) == 0) known = 1;
        if (!known) usage_error("unknown option '%s'", flag);
        if (i + 1 >= argc) usage_error("%s needs a value", flag);
        const char *value = argv[++i];
        if (key) {
            if (strcmp(key, "dim") == 0) {
                if (have_dim)
                    usage_error("give one of --dim and --dims, once (%s %s)", flag, value);
                have_dim = 1;
            }
            if (datagen_set(&cfg, key, value, err, sizeof err) != 0)
                usage_error("%s: %s", flag, err);
            have_task |= strcmp(key, "task") == 0;
        } else if (strcmp(flag, "--encoding") == 0) {
            enc_name = value;
        } else if (strcmp(flag, "--out-encoding") == 0) {
            out_enc_name = value;
        } else if (strcmp(flag, "--count") == 0) {
            count = parse_u64(flag, value, 1);
            have_count = 1;
        } else if (strcmp(flag, "--seed") == 0) {
            seed = parse_u64(flag, value, 0);
            have_seed = 1;
        } else if (strcmp(flag, "--stream") == 0) {
            if (strcmp(value, "train") == 0)
                stream = STREAM_TRAIN;
            else if (strcmp(value, "test") == 0)
                stream = STREAM_TEST;
            else if (strcmp(value, "ood") == 0)
                stream = STREAM_OOD;
            else
                usage_error("--stream: bad value '%s' (allowed: train, test, ood)", value);
        } else {
            if (strcmp(value, "tokens") != 0 && strcmp(value, "text") != 0)
                usage_error("--format: bad value '%s' (allowed: tokens, text)", value);
            format = value;
        }
    }
    if (!have_task) usage_error("--task is required (allowed: %s)", task_names_list());
    if (!enc_name) usage_error("--encoding is required (allowed: %s)", encoding_names_list());
    if (!have_count) usage_error("--count is required");
    if (!have_seed) usage_error("--seed is required");
    lawt_encoding enc, out_enc;
    if (encoding_from_name(enc_name, &enc) != 0)
        usage_error("--encoding: unknown encoding '%s' (allowed: %s)", enc_name,
                    encoding_names_list());
    if (!out_enc_name) out_enc_name = enc_name;
    if (encoding_from_name(out_enc_name, &out_enc) != 0)
        usage_error("--out-encoding: unknown encoding '%s' (allowed: %s)", out_enc_name,
                    encoding_names_list());
    cfg.in_digits = enc.digits;
    cfg.out_digits = out_enc.digits;
    if (datagen_validate(&cfg, err, sizeof err) != 0) usage_error("%s", err);

    if (stats) {
        for (int t = 0; t < cfg.ntasks; t++)
            if (cfg.tasks[t] != TASK_EIGENVALUES && cfg.tasks[t] != TASK_EIGENVECTORS)
                usage_error("--stats: needs eigen tasks (eigenvalues, eigenvectors), not %s",
                            task_name(cfg.tasks[t]));
        print_stats(&cfg, seed, stream, count);
        return 0;
    }

    lawt_vocab vin, vout;
    vocab_init(&vin, &enc);
    vocab_init(&vout, &out_enc);
    int src_cap = datagen_max_src_len(&cfg, &enc), tgt_cap = datagen_max_tgt_len(&cfg, &out_enc);
    int *src = lawt_malloc(sizeof(int) * (size_t)src_cap);
    int *tgt = lawt_malloc(sizeof(int) * (size_t)tgt_cap);
    lawt_matrix in = {0, 0, lawt_malloc(datagen_max_input_coeffs(&cfg) * sizeof(double))};
    lawt_matrix out = {0, 0, lawt_malloc(datagen_max_output_coeffs(&cfg) * sizeof(double))};
    int stride = vin.word_stride > vout.word_stride ? vin.word_stride : vout.word_stride;
    int text_cap = (src_cap > tgt_cap ? src_cap : tgt_cap) * stride + 1;
    char *text = lawt_malloc((size_t)text_cap);
    for (uint64_t i = 0; i < count; i++) {
        int src_len, tgt_len;
        lawt_task task;
        datagen_tokens(&cfg, &vin, &vout, seed, stream, i, src, &src_len, tgt, &tgt_len, &in, &out,
                       &task);
        if (strcmp(format, "tokens") == 0) { /* without the EOS framing */
            vocab_spell(&vin, src + 1, src_len - 2, text, (size_t)text_cap);
            fputs(text, stdout);
            putchar('\t');
            vocab_spell(&vout, tgt + 1, tgt_len - 2, text, (size_t)text_cap);
            puts(text);
        } else {
            printf("# example %llu: %s\n", (unsigned long long)i, task_name(task));
            print_matrix("input", &in, enc.digits);
            print_matrix("output", &out, out_enc.digits);
            putchar('\n');
        }
    }
    free(text);
    free(in.a);
    free(out.a);
    free(src);
    free(tgt);
    vocab_free(&vin);
    vocab_free(&vout);
    return 0;
}
