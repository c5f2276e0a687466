/* lawt_solve: a trained model on the user's own matrices, beside LAPACK's answer.
 *
 * Matrices come as text (one row a line, numbers separated by spaces or commas, a blank line
 * between matrices, '#' starts a comment) or as an HDF5 dataset (FILE.h5:/NAME, 2-D for one
 * matrix, 3-D for several). Each is checked before any decoding (shape, size, finite numbers
 * within the encoding's range, symmetry for the eigen tasks), encoded exactly as the training
 * examples were (the checkpoint's own configuration), decoded greedily or by beam search, and
 * compared with datagen's reference answer by the paper's check (eval.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "checkpoint/checkpoint.h"
#include "datagen/datagen.h"
#include "encoding/encoding.h"
#include "eval/eval.h"
#include "model/model.h"
#include "trainer/trainer.h"

static const char USAGE[] =
    "usage: lawt_solve --checkpoint CKPT.h5 [--task NAME] [--beam N | --greedy] [FILE | FILE.h5:/DATASET]\n"
    "\n"
    "Runs a trained model on matrices of your own and prints its answer beside LAPACK's, the\n"
    "relative error of the paper's check in the L1, L2 and Linf norms, whether it passes each\n"
    "evaluation tolerance, and for inversion and eigenvectors the reliability predictor (the\n"
    "condition number of the input, resp. of the predicted eigenvector matrix; section 4.5).\n"
    "\n"
    "Input (FILE, or standard input when absent or '-'): one matrix row a line, numbers\n"
    "separated by spaces or commas, a blank line between matrices, '#' starts a comment; or an\n"
    "HDF5 dataset FILE.h5:/NAME of 2 (one matrix) or 3 (several) dimensions. Matrices are\n"
    "written as the task's input: [M | N] side by side for add and matmul, [M | v] for matvec.\n"
    "Every matrix is checked first (ragged rows, a size the model was not trained on, NaN/Inf,\n"
    "numbers the encoding cannot write, symmetry for the eigen tasks): a message names the\n"
    "matrix and the row, and nothing is decoded.\n"
    "\n"
    "  --checkpoint FILE  the trained model (its configuration says task, sizes and encodings)\n"
    "  --task NAME        the task, when the model was trained on several (default: the first)\n"
    "  --beam N           beam search of width N (default: the checkpoint's eval.decoding)\n"
    "  --greedy           greedy decoding\n"
    "  --threads N        CPU threads of the model (default 1)\n"
    "\n"
    "Exit status: 0 every matrix solved (whatever the model's accuracy), 1 bad input or\n"
    "checkpoint, 2 bad command line.\n";

typedef struct {
    char name[300]; /* "matrix 2 (in.txt, line 5)" */
    int rows, cols;
    double *a;
    int *line_of_row; /* text input: the file line of each row (NULL for HDF5) */
    int reported;     /* a problem of this matrix was already reported while reading */
} input_matrix;

typedef struct {
    input_matrix *m;
    int n, cap;
} input_list;

static input_matrix *add_matrix(input_list *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        input_matrix *grown = realloc(l->m, (size_t)l->cap * sizeof *grown);
        if (!grown) lawt_die("out of memory reading matrices");
        l->m = grown;
    }
    input_matrix *m = &l->m[l->n++];
    memset(m, 0, sizeof *m);
    return m;
}

static void free_inputs(input_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->m[i].a);
        free(l->m[i].line_of_row);
    }
    free(l->m);
}

static int problems;

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lawt_solve: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    problems++;
}

/* ---- text input ---- */

/* Reads matrices from a text stream. Each problem of the text (a word that is not a number,
 * ragged rows) is reported naming the matrix, the row and the line; returns the problem count. */
static int read_text(FILE *f, const char *file, input_list *l)
{
    char *line = NULL;
    size_t linecap = 0;
    int lineno = 0, before = problems;
    input_matrix *m = NULL;
    size_t cap = 0, len = 0, rowcap = 0;
    ssize_t got;
    while ((got = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        char *p = line;
        while (*p && isspace((unsigned char)*p)) p++;
        if (*p == '#') continue;
        if (!*p) { /* a blank line ends the matrix */
            m = NULL;
            continue;
        }
        if (!m) {
            m = add_matrix(l);
            snprintf(m->name, sizeof m->name, "matrix %d (%s, line %d)", l->n, file, lineno);
            cap = len = rowcap = 0;
        }
        int row = m->rows, count = 0, bad = 0;
        for (;;) {
            while (*p && (isspace((unsigned char)*p) || *p == ',')) p++;
            if (!*p || *p == '#') break;
            char *stop;
            double x = strtod(p, &stop);
            if (stop == p || (*stop && !isspace((unsigned char)*stop) && *stop != ',' && *stop != '#')) {
                char *w = p;
                while (*w && !isspace((unsigned char)*w) && *w != ',') w++;
                problem("%s, row %d (line %d): '%.*s' is not a number", m->name, row + 1, lineno,
                        (int)(w - p), p);
                bad = m->reported = 1;
                break;
            }
            if (len == cap) {
                cap = cap ? 2 * cap : 64;
                double *grown = realloc(m->a, cap * sizeof *grown);
                if (!grown) lawt_die("out of memory reading matrices");
                m->a = grown;
            }
            m->a[len++] = x;
            count++;
            p = stop;
        }
        if (bad) {
            len -= (size_t)count;
            continue;
        }
        if (row == 0) m->cols = count;
        else if (count != m->cols && (m->reported = 1))
            problem("%s, row %d (line %d): %d numbers, row 1 has %d (ragged rows)", m->name, row + 1,
                    lineno, count, m->cols);
        if (count != m->cols) {
            len -= (size_t)count;
            continue;
        }
        if ((size_t)row == rowcap) {
            rowcap = rowcap ? 2 * rowcap : 16;
            int *grown = realloc(m->line_of_row, rowcap * sizeof *grown);
            if (!grown) lawt_die("out of memory reading matrices");
            m->line_of_row = grown;
        }
        m->line_of_row[row] = lineno;
        m->rows++;
    }
    free(line);
    if (ferror(f)) problem("%s: read error", file);
    return problems - before;
}

/* ---- HDF5 input ---- */

/* Every HDF5 call checked: a failure names the file, the call and HDF5's innermost message. */
static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    snprintf(data, 256, "%s", e->desc ? e->desc : "");
    return 0;
}

#define H5_CHECKED(call)                                                                          \
    do {                                                                                          \
        if ((call) < 0) {                                                                         \
            char why[256] = "no HDF5 message";                                                    \
            H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, why);                               \
            H5Eclear2(H5E_DEFAULT);                                                               \
            problem("%s: %s failed (lawt_solve.c:%d): %s", spec, #call, __LINE__, why);           \
            goto out;                                                                             \
        }                                                                                         \
    } while (0)

/* spec is FILE.h5:/NAME. */
static int read_hdf5(const char *spec, input_list *l)
{
    int before = problems;
    const char *colon = strstr(spec, ".h5:");
    char file[1024];
    snprintf(file, sizeof file, "%.*s", (int)(colon + 3 - spec), spec);
    const char *name = colon + 4;
    hid_t f = -1, d = -1, sp = -1;
    double *buf = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5_CHECKED(f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT));
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        problem("%s: %s has no dataset %s", spec, file, name);
        goto out;
    }
    H5_CHECKED(d = H5Dopen2(f, name, H5P_DEFAULT));
    H5_CHECKED(sp = H5Dget_space(d));
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[3] = {1, 1, 1};
    if (nd != 2 && nd != 3) {
        problem("%s: a dataset of %d dimensions; a matrix has 2, several matrices 3", spec, nd);
        goto out;
    }
    H5_CHECKED(H5Sget_simple_extent_dims(sp, nd == 3 ? dims : dims + 1, NULL));
    size_t per = (size_t)dims[1] * dims[2], total = per * dims[0];
    if (total == 0 || dims[1] > LAWT_MAX_DIM || dims[2] > 2 * LAWT_MAX_DIM + 1) {
        problem("%s: %llu x %llu matrices: empty or larger than any task's input", spec,
                (unsigned long long)dims[1], (unsigned long long)dims[2]);
        goto out;
    }
    buf = lawt_malloc(total * sizeof *buf);
    H5_CHECKED(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    for (hsize_t k = 0; k < dims[0]; k++) {
        input_matrix *m = add_matrix(l);
        if (nd == 3) snprintf(m->name, sizeof m->name, "matrix %d (%s[%llu])", l->n, spec, (unsigned long long)k);
        else snprintf(m->name, sizeof m->name, "matrix %d (%s)", l->n, spec);
        m->rows = (int)dims[1];
        m->cols = (int)dims[2];
        m->a = lawt_malloc(per * sizeof *m->a);
        memcpy(m->a, buf + k * per, per * sizeof *m->a);
    }
out:
    free(buf);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    if (f >= 0) H5Fclose(f);
    return problems - before;
}

/* ---- what the model was trained on ---- */

typedef struct {
    trainer_config cfg;
    lawt_task task;
    lawt_vocab vin, vout;
    int in_digits, out_digits; /* what the sequences really keep (datagen's rule) */
    int max_src, max_out;
    model *model;
} solver;

static void range_text(int lo, int hi, char *buf, size_t cap)
{
    if (lo == hi) snprintf(buf, cap, "%d", lo);
    else snprintf(buf, cap, "%d to %d", lo, hi);
}

/* Checks one matrix against the model's training data; every problem is reported. */
static void check_matrix(const solver *s, input_matrix *m)
{
    const datagen_config *d = &s->cfg.data;
    const char *task = task_name(s->task);
    int before = problems;
    int pm, pn;
    if (m->reported) return;
    if (m->rows == 0) {
        problem("%s: no rows", m->name);
        return;
    }
    if (datagen_problem_size(s->task, m->rows, m->cols, &pm, &pn)) {
        const char *layout = s->task == TASK_ADD || s->task == TASK_MATMUL ? "[M | N], m x 2n"
                             : s->task == TASK_MATVEC                       ? "[M | v], m x (n+1)"
                                                                            : "square";
        problem("%s: %d x %d is not an input of %s (%s)", m->name, m->rows, m->cols, task, layout);
        return;
    }
    char rows[32], cols[32];
    range_text(d->rows_min, d->rows_max, rows, sizeof rows);
    int cmin = d->cols_max ? d->cols_min : d->rows_min, cmax = d->cols_max ? d->cols_max : d->rows_max;
    range_text(cmin, cmax, cols, sizeof cols);
    int square_model = d->cols_max == 0;
    if (pm < d->rows_min || pm > d->rows_max || pn < cmin || pn > cmax || (square_model && pm != pn)) {
        char sizes[96];
        if (square_model && d->rows_min == d->rows_max) snprintf(sizes, sizeof sizes, "%dx%d", d->rows_min, d->rows_min);
        else if (square_model) snprintf(sizes, sizeof sizes, "square %s", rows);
        else snprintf(sizes, sizeof sizes, "(%s)x(%s)", rows, cols);
        problem("%s: M is %dx%d; the model was trained on %s of %s matrices only", m->name, pm, pn,
                task, sizes);
        return;
    }
    for (int i = 0; i < m->rows; i++) {
        char where[400];
        if (m->line_of_row) snprintf(where, sizeof where, "%s, row %d (line %d)", m->name, i + 1, m->line_of_row[i]);
        else snprintf(where, sizeof where, "%s, row %d", m->name, i + 1);
        for (int j = 0; j < m->cols; j++) {
            double x = MAT(m, i, j);
            if (!isfinite(x)) {
                problem("%s, column %d: %g is not a finite number", where, j + 1, x);
                break;
            }
            double one = round_significant(x, s->in_digits);
            lawt_matrix single = {1, 1, &one};
            int ids[64];
            if (encode_matrix(&s->vin, &single, ids, 64) < 0) {
                problem("%s, column %d: %g is outside the range of the %s encoding (%d significant "
                        "digits, exponents -%d to %d)", where, j + 1, x, s->vin.enc.name,
                        s->vin.enc.digits, s->vin.enc.max_exponent, s->vin.enc.max_exponent);
                break;
            }
        }
        if (problems > before) return;
        if (s->task == TASK_EIGENVALUES || s->task == TASK_EIGENVECTORS)
            for (int j = 0; j < i; j++)
                if (round_significant(MAT(m, i, j), s->in_digits) != round_significant(MAT(m, j, i), s->in_digits)) {
                    problem("%s: not symmetric: column %d is %g, row %d column %d is %g (%s takes "
                            "symmetric matrices)", where, j + 1, MAT(m, i, j), j + 1, i + 1, MAT(m, j, i), task);
                    return;
                }
    }
}

/* ---- solving ---- */

static void print_side_by_side(const char *left_title, const lawt_matrix *left, const char *right_title,
                               const lawt_matrix *right)
{
    int lw = (int)strlen(left_title), lr = left ? left->rows : 0, rr = right ? right->rows : 0;
    char cell[64];
    for (int i = 0; left && i < left->rows; i++) {
        int w = 0;
        for (int j = 0; j < left->cols; j++) w += snprintf(cell, sizeof cell, " %10.4g", MAT(left, i, j));
        if (w > lw) lw = w;
    }
    if (right_title[0]) printf("  %-*s   %s\n", lw, left_title, right_title);
    else printf("  %s\n", left_title);
    for (int i = 0; i < (lr > rr ? lr : rr); i++) {
        int w = 0;
        printf("  ");
        for (int j = 0; i < lr && j < left->cols; j++) w += printf(" %10.4g", MAT(left, i, j));
        if (rr) printf("%*s   ", lw - w, "");
        for (int j = 0; i < rr && j < right->cols; j++) printf(" %10.6g", MAT(right, i, j));
        printf("\n");
    }
}

static void solve_one(solver *s, const input_matrix *im, int beam)
{
    /* The input as the model reads it: rounded to the digits of the training inputs. */
    size_t count = (size_t)im->rows * (size_t)im->cols;
    double *in_a = lawt_malloc(count * sizeof *in_a);
    for (size_t k = 0; k < count; k++) in_a[k] = round_significant(im->a[k], s->in_digits);
    lawt_matrix in = {im->rows, im->cols, in_a};

    int *src = lawt_malloc((size_t)s->max_src * sizeof *src);
    int n = 0;
    src[n++] = TOK_EOS;
    if (s->cfg.data.task_token) src[n++] = vocab_task_token(&s->vin, s->task);
    int enc = encode_matrix(&s->vin, &in, src + n, s->max_src - n - 1);
    if (enc < 0) lawt_die("%s: cannot be encoded after passing the checks", im->name);
    n += enc;
    src[n++] = TOK_EOS;
    int src_len = n;
    while (n < s->max_src) src[n++] = TOK_PAD;

    int *out = lawt_malloc((size_t)s->max_out * sizeof *out), out_len = 0;
    if (beam > 1) model_beam_decode(s->model, src, &src_len, 1, s->max_src, beam, s->max_out, out, &out_len);
    else model_greedy_decode(s->model, src, &src_len, 1, s->max_src, s->max_out, out, &out_len);

    int pm, pn;
    datagen_problem_size(s->task, in.rows, in.cols, &pm, &pn);
    int big = pm > pn ? pm : pn;
    size_t cap = (size_t)(1 + pm + pn) * (size_t)big;
    lawt_matrix pred = {0, 0, lawt_malloc(cap * sizeof(double))};
    lawt_matrix ref = {0, 0, lawt_malloc(cap * sizeof(double))};
    int decoded =
        datagen_decode_output(&s->cfg.data, &s->vout, s->task, out, out_len, &pred, (int)cap) ==
        DECODE_OK;
    /* Rounded as the training targets are: the check is the one evaluation makes. */
    int solved = datagen_solve(s->task, &in, &ref) == 0;
    for (int k = 0; solved && k < ref.rows * ref.cols; k++) ref.a[k] = round_significant(ref.a[k], s->out_digits);

    printf("%s: %s of a %d x %d matrix, %s decoding\n", im->name, task_name(s->task), pm, pn,
           beam > 1 ? "beam" : "greedy");
    char title[64];
    snprintf(title, sizeof title, "input (%d significant digits)", s->in_digits);
    print_side_by_side(title, &in, "", NULL);
    snprintf(title, sizeof title, "LAPACK (%d significant digits)", s->out_digits);
    print_side_by_side("model", decoded ? &pred : NULL,
                       solved ? title : "LAPACK: no answer (singular, or reciprocal condition number < 1e-6)",
                       solved ? &ref : NULL);
    if (!decoded) {
        char words[4096];
        vocab_spell(&s->vout, out, out_len, words, sizeof words);
        printf("  the model's answer is not a matrix: %s\n", out_len ? words : "(no tokens)");
    }
    double err[LAWT_NORM_COUNT];
    if (decoded && solved) {
        int shaped = eval_relative_error(s->task, &in, &ref, &pred, err) == 0;
        if (!shaped) {
            printf("  the model's answer has the wrong shape for %s: %d x %d\n", task_name(s->task),
                   pred.rows, pred.cols);
        } else {
            printf("  relative error (the paper's check):");
            for (int k = 0; k < LAWT_NORM_COUNT; k++) printf(" %s %.3g%s", norm_name((lawt_norm)k), err[k], k + 1 < LAWT_NORM_COUNT ? " |" : "");
            printf("\n  L1 tolerance:");
            for (int t = 0; t < s->cfg.ntol; t++)
                printf(" %g%% %s", 100 * s->cfg.tol[t], eval_passes(s->task, err[NORM_L1], s->cfg.tol[t]) ? "pass" : "fail");
            printf("%s\n", s->task == TASK_TRANSPOSE ? " (transpose: exact answers only)" : "");
        }
    }
    if (s->task == TASK_INVERSION)
        printf("  reliability: condition number of the input %.4g (section 4.5: inverses of "
               "ill-conditioned matrices fail more)\n", eval_condition_number(&in));
    if (s->task == TASK_EIGENVECTORS && decoded)
        printf("  reliability: condition number of the predicted eigenvectors Q %.4g (section 4.5: "
               "close to 1 when the prediction is right)\n", eval_eigenvectors_q_condition(&pred));
    printf("\n");
    free(pred.a);
    free(ref.a);
    free(out);
    free(src);
    free(in_a);
}

static int load_solver(solver *s, const char *path, const char *task, int threads)
{
    char err[1024];
    checkpoint_meta meta;
    if (checkpoint_read_meta(path, &meta, err, sizeof err)) {
        problem("%s", err);
        return -1;
    }
    char origin[1100];
    snprintf(origin, sizeof origin, "the configuration of %s", path);
    config_init(&s->cfg);
    int bad = config_parse_string(&s->cfg, meta.config_text, origin, err, sizeof err) ||
              config_finish(&s->cfg, err, sizeof err);
    checkpoint_meta_free(&meta);
    if (bad) {
        problem("%s", err);
        return -1;
    }
    const datagen_config *d = &s->cfg.data;
    s->task = d->tasks[0];
    if (task) {
        int t = task_from_name(task), found = 0;
        for (int k = 0; k < d->ntasks; k++) found |= t >= 0 && d->tasks[k] == (lawt_task)t;
        if (!found) {
            char list[256] = "";
            for (int k = 0; k < d->ntasks; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", task_name(d->tasks[k]));
            problem("--task %s: the model of %s was trained on: %s", task, path, list);
            return -1;
        }
        s->task = (lawt_task)t;
    }
    lawt_encoding ein, eout;
    encoding_from_name(s->cfg.encoding, &ein);
    encoding_from_name(s->cfg.out_encoding[0] ? s->cfg.out_encoding : s->cfg.encoding, &eout);
    vocab_init(&s->vin, &ein);
    vocab_init(&s->vout, &eout);
    s->in_digits = d->in_digits <= 0 || d->in_digits > ein.digits ? ein.digits : d->in_digits;
    s->out_digits = d->out_digits <= 0 || d->out_digits > eout.digits ? eout.digits : d->out_digits;
    s->max_src = datagen_max_src_len(d, &ein);
    s->max_out = datagen_max_tgt_len(d, &eout) - 2;
    model_config mc;
    if (checkpoint_read_model_config(path, &mc, err, sizeof err)) {
        problem("%s", err);
        return -1;
    }
    model_set_threads(threads);
    s->model = model_create(&mc, BACKEND_CPU, 1);
    if (checkpoint_load(path, s->model, 0, err, sizeof err)) {
        problem("%s", err);
        return -1;
    }
    return 0;
}

static void free_solver(solver *s)
{
    if (s->model) model_free(s->model);
    vocab_free(&s->vin);
    vocab_free(&s->vout);
}

int main(int argc, char **argv)
{
    const char *checkpoint = NULL, *task = NULL, *input = NULL;
    int beam = 0, greedy = 0, threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        } else if (strcmp(a, "--checkpoint") == 0 && has_value) {
            checkpoint = argv[++i];
        } else if (strcmp(a, "--task") == 0 && has_value) {
            task = argv[++i];
        } else if (strcmp(a, "--greedy") == 0) {
            greedy = 1;
        } else if ((strcmp(a, "--beam") == 0 || strcmp(a, "--threads") == 0) && has_value) {
            char *stop;
            long v = strtol(argv[++i], &stop, 10);
            if (*stop || v < 1 || v > 64) {
                fprintf(stderr, "lawt_solve: %s %s: an integer from 1 to 64, please\n", a, argv[i]);
                return 2;
            }
            if (a[2] == 'b') beam = (int)v;
            else threads = (int)v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "lawt_solve: %s: %s (see --help)\n",
                    has_value ? "unknown option" : "unknown option or missing value", a);
            return 2;
        } else if (input) {
            fprintf(stderr, "lawt_solve: one input, please: %s and %s (see --help)\n", input, a);
            return 2;
        } else {
            input = a;
        }
    }
    if (!checkpoint) {
        fprintf(stderr, "lawt_solve: --checkpoint FILE is required (see --help)\n");
        return 2;
    }
    if (beam && greedy) {
        fprintf(stderr, "lawt_solve: --beam and --greedy: one or the other\n");
        return 2;
    }
    solver s;
    memset(&s, 0, sizeof s);
    input_list l = {0};
    int status = 1;
    if (load_solver(&s, checkpoint, task, threads)) goto out;
    if (!beam && !greedy) beam = s.cfg.decoding == DECODING_BEAM ? s.cfg.beam_size : 1;
    if (greedy) beam = 1;
    if (input && strstr(input, ".h5:")) {
        read_hdf5(input, &l);
    } else {
        FILE *f = !input || strcmp(input, "-") == 0 ? stdin : fopen(input, "r");
        const char *name = f == stdin ? "standard input" : input;
        if (!f) {
            problem("%s: cannot open: %s", input, strerror(errno));
            goto out;
        }
        read_text(f, name, &l);
        if (f != stdin) fclose(f);
    }
    if (problems == 0 && l.n == 0) problem("%s: no matrix", input ? input : "standard input");
    /* Every matrix is checked, and every problem reported, before any is decoded. */
    for (int i = 0; i < l.n; i++) check_matrix(&s, &l.m[i]);
    if (problems == 0)
        for (int i = 0; i < l.n; i++) solve_one(&s, &l.m[i], beam);
    status = problems ? 1 : 0;
out:
    free_inputs(&l);
    free_solver(&s);
    return status;
}
