/* test_datagen_tasks: every task's output against an independent computation (naive loops,
 * a Jacobi eigenvalue solver written here), the layouts of the table, rounding,
 * rectangular and variable sizes, noise, redraws, and the framed token sequences. */
#include "datagen/datagen.h"
#include "tests/test.h"

#include <string.h>

#define N_EXAMPLES 300
#define TEST_MAX 16 /* largest dimension these tests draw */

static datagen_config config(const char *task, const char *dim, const char *dim2, int digits)
{
    datagen_config cfg;
    char err[256];
    datagen_default(&cfg);
    if (datagen_set(&cfg, "task", task, err, sizeof err) != 0 ||
        datagen_set(&cfg, "dim", dim, err, sizeof err) != 0 ||
        (dim2 && datagen_set(&cfg, "dim2", dim2, err, sizeof err) != 0) ||
        datagen_validate(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "bad test config: %s\n", err);
        exit(1);
    }
    cfg.in_digits = cfg.out_digits = digits;
    return cfg;
}

typedef struct {
    lawt_matrix in, out;
    lawt_task task;
    int redraws;
} example;

static double in_buf[4 * TEST_MAX * TEST_MAX], out_buf[4 * TEST_MAX * TEST_MAX];

static example get(const datagen_config *cfg, uint64_t index)
{
    example e = {{0, 0, in_buf}, {0, 0, out_buf}, TASK_TRANSPOSE, 0};
    CHECK(datagen_max_input_coeffs(cfg) <= sizeof in_buf / sizeof in_buf[0]);
    e.redraws = datagen_example(cfg, 7, STREAM_TRAIN, index, &e.in, &e.out, &e.task);
    return e;
}

static double frobenius(const lawt_matrix *m)
{
    double s = 0;
    for (int k = 0; k < m->rows * m->cols; k++) s += m->a[k] * m->a[k];
    return sqrt(s);
}

/* Eigenvalues of the symmetric s (n x n), descending, by cyclic Jacobi rotations. */
static void jacobi_eigenvalues(int n, const double *s, double *w)
{
    double a[TEST_MAX * TEST_MAX];
    memcpy(a, s, sizeof(double) * (size_t)n * n);
    double norm2 = 0;
    for (int k = 0; k < n * n; k++) norm2 += a[k] * a[k];
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
        if (off <= 1e-32 * norm2) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                if (a[p * n + q] == 0) continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q]);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), sn = t * c;
                for (int k = 0; k < n; k++) { /* columns p, q */
                    double kp = a[k * n + p], kq = a[k * n + q];
                    a[k * n + p] = c * kp - sn * kq;
                    a[k * n + q] = sn * kp + c * kq;
                }
                for (int k = 0; k < n; k++) { /* rows p, q */
                    double pk = a[p * n + k], qk = a[q * n + k];
                    a[p * n + k] = c * pk - sn * qk;
                    a[q * n + k] = sn * pk + c * qk;
                }
            }
    }
    for (int i = 0; i < n; i++) w[i] = a[i * n + i];
    for (int i = 0; i < n; i++) /* insertion sort, descending */
        for (int j = i; j > 0 && w[j] > w[j - 1]; j--) {
            double x = w[j];
            w[j] = w[j - 1];
            w[j - 1] = x;
        }
}

/* The largest-magnitude entry (first on ties) of column c of rows [r0, r0 + len) is > 0. */
static int column_sign_ok(const lawt_matrix *m, int r0, int len, int c)
{
    int best = r0;
    for (int i = r0 + 1; i < r0 + len; i++)
        if (fabs(MAT(m, i, c)) > fabs(MAT(m, best, c))) best = i;
    return MAT(m, best, c) > 0;
}

static void test_shapes(void)
{
    static const struct {
        const char *task;
        int in_rows, in_cols, out_rows, out_cols; /* for M 3 x 4 */
    } SHAPES[] = {
        {"transpose", 3, 4, 4, 3},      {"add", 3, 8, 3, 4},
        {"matvec", 3, 5, 4, 1},         {"matmul", 3, 8, 4, 4},
        {"singularvalues", 3, 4, 3, 1}, {"svd", 3, 4, 8, 3},
    };
    for (size_t t = 0; t < sizeof SHAPES / sizeof SHAPES[0]; t++) {
        datagen_config cfg = config(SHAPES[t].task, "3", "4", 3);
        example e = get(&cfg, 0);
        CHECK_MSG(e.in.rows == SHAPES[t].in_rows && e.in.cols == SHAPES[t].in_cols,
                  "%s input %dx%d", SHAPES[t].task, e.in.rows, e.in.cols);
        CHECK_MSG(e.out.rows == SHAPES[t].out_rows && e.out.cols == SHAPES[t].out_cols,
                  "%s output %dx%d", SHAPES[t].task, e.out.rows, e.out.cols);
        CHECK((size_t)e.in.rows * e.in.cols == datagen_max_input_coeffs(&cfg));
        CHECK((size_t)e.out.rows * e.out.cols == datagen_max_output_coeffs(&cfg));
    }
    static const struct {
        const char *task;
        int out_rows, out_cols; /* for 4 x 4 */
    } SQUARE[] = {{"eigenvalues", 4, 1}, {"eigenvectors", 5, 4}, {"inversion", 4, 4}};
    for (size_t t = 0; t < sizeof SQUARE / sizeof SQUARE[0]; t++) {
        datagen_config cfg = config(SQUARE[t].task, "4", NULL, 3);
        example e = get(&cfg, 0);
        CHECK(e.in.rows == 4 && e.in.cols == 4);
        CHECK_MSG(e.out.rows == SQUARE[t].out_rows && e.out.cols == SQUARE[t].out_cols,
                  "%s output %dx%d", SQUARE[t].task, e.out.rows, e.out.cols);
    }
}

static void test_transpose_add(void)
{
    datagen_config tr = config("transpose", "3-6", "2-7", 3), ad = config("add", "3-6", "2-7", 3);
    for (uint64_t i = 0; i < N_EXAMPLES; i++) {
        example e = get(&tr, i);
        int bad = 0;
        for (int r = 0; r < e.in.rows; r++)
            for (int c = 0; c < e.in.cols; c++) bad += MAT(&e.out, c, r) != MAT(&e.in, r, c);
        CHECK_MSG(bad == 0 && e.out.rows == e.in.cols, "transpose example %llu",
                  (unsigned long long)i);
        e = get(&ad, i);
        int n = e.out.cols;
        bad = 0;
        for (int r = 0; r < e.out.rows; r++)
            for (int c = 0; c < n; c++)
                bad += MAT(&e.out, r, c) !=
                       round_significant(MAT(&e.in, r, c) + MAT(&e.in, r, n + c), 3);
        CHECK_MSG(bad == 0 && e.in.cols == 2 * n, "add example %llu", (unsigned long long)i);
    }
}

static void test_matvec_matmul(void)
{
    for (int digits = 0; digits <= 3; digits += 3) {
        /* digits 0: unrounded output, equal to the naive loops up to summation order. */
        double tol = digits ? 5e-3 : 1e-13;
        datagen_config mv = config("matvec", "2-7", "2-7", digits);
        datagen_config mm = config("matmul", "2-7", "2-7", digits);
        for (uint64_t i = 0; i < N_EXAMPLES; i++) {
            example e = get(&mv, i);
            int m = e.in.rows, n = e.out.rows, bad = 0;
            CHECK(e.in.cols == n + 1 && e.out.cols == 1);
            for (int j = 0; j < n; j++) {
                double s = 0, scale = 0;
                for (int r = 0; r < m; r++) {
                    s += MAT(&e.in, r, j) * MAT(&e.in, r, n);
                    scale += fabs(MAT(&e.in, r, j) * MAT(&e.in, r, n));
                }
                bad += fabs(e.out.a[j] - s) > tol * (digits ? fabs(s) : scale);
            }
            CHECK_MSG(bad == 0, "matvec example %llu digits %d", (unsigned long long)i, digits);
            e = get(&mm, i);
            m = e.in.rows;
            n = e.out.rows;
            bad = 0;
            CHECK(e.in.cols == 2 * n && e.out.cols == n);
            for (int a = 0; a < n; a++)
                for (int b = 0; b < n; b++) {
                    double s = 0, scale = 0;
                    for (int r = 0; r < m; r++) {
                        s += MAT(&e.in, r, a) * MAT(&e.in, r, n + b);
                        scale += fabs(MAT(&e.in, r, a) * MAT(&e.in, r, n + b));
                    }
                    bad += fabs(MAT(&e.out, a, b) - s) > tol * (digits ? fabs(s) : scale);
                }
            CHECK_MSG(bad == 0, "matmul example %llu digits %d", (unsigned long long)i, digits);
        }
    }
}

static void test_eigen(void)
{
    datagen_config ev = config("eigenvalues", "1-12", NULL, 0);
    datagen_config vec = config("eigenvectors", "1-12", NULL, 0);
    for (uint64_t i = 0; i < N_EXAMPLES; i++) {
        example e = get(&ev, i);
        int n = e.in.rows, bad = 0;
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++) bad += MAT(&e.in, r, c) != MAT(&e.in, c, r);
        CHECK_MSG(bad == 0, "eigenvalues input %llu is not symmetric", (unsigned long long)i);
        double w[TEST_MAX], norm = frobenius(&e.in);
        jacobi_eigenvalues(n, e.in.a, w);
        for (int k = 0; k < n; k++) bad += fabs(e.out.a[k] - w[k]) > 1e-12 * norm;
        CHECK_MSG(bad == 0, "eigenvalues %llu differ from Jacobi's", (unsigned long long)i);

        e = get(&vec, i);
        n = e.in.cols;
        norm = frobenius(&e.in);
        CHECK(e.out.rows == n + 1 && e.out.cols == n);
        for (int c = 0; c + 1 < n; c++) bad += e.out.a[c] < e.out.a[c + 1];
        CHECK_MSG(bad == 0, "eigenvalues of %llu not descending", (unsigned long long)i);
        double rebuild = 0, ortho = 0;
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++) {
                double s = 0, dot = 0;
                for (int k = 0; k < n; k++) {
                    s += MAT(&e.out, 1 + r, k) * e.out.a[k] * MAT(&e.out, 1 + c, k); /* Q D Q^T */
                    dot += MAT(&e.out, 1 + k, r) * MAT(&e.out, 1 + k, c);            /* Q^T Q */
                }
                rebuild = fmax(rebuild, fabs(s - MAT(&e.in, r, c)));
                ortho = fmax(ortho, fabs(dot - (r == c)));
            }
        CHECK_MSG(rebuild <= 1e-10 * norm, "Q D Q^T misses the input of %llu by %g",
                  (unsigned long long)i, rebuild);
        CHECK_MSG(ortho <= 1e-12, "Q^T Q - Id of %llu is %g", (unsigned long long)i, ortho);
        for (int c = 0; c < n; c++) bad += !column_sign_ok(&e.out, 1, n, c);
        CHECK_MSG(bad == 0, "eigenvector signs of %llu", (unsigned long long)i);
    }
}

static void test_singular(void)
{
    datagen_config sv = config("singularvalues", "1-9", "1-9", 0);
    datagen_config svd = config("svd", "1-9", "1-9", 0);
    for (uint64_t i = 0; i < N_EXAMPLES; i++) {
        example e = get(&sv, i);
        int m = e.in.rows, n = e.in.cols, k = m < n ? m : n, bad = 0;
        CHECK(e.out.rows == k && e.out.cols == 1);
        /* sigma^2 are the k largest eigenvalues of M^T M (the others are 0). */
        double mtm[TEST_MAX * TEST_MAX], w[TEST_MAX];
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) {
                double s = 0;
                for (int r = 0; r < m; r++) s += MAT(&e.in, r, a) * MAT(&e.in, r, b);
                mtm[a * n + b] = s;
            }
        jacobi_eigenvalues(n, mtm, w);
        double smax = sqrt(fmax(w[0], 0));
        for (int j = 0; j < k; j++) bad += fabs(e.out.a[j] - sqrt(fmax(w[j], 0))) > 1e-7 * smax;
        for (int j = 0; j + 1 < k; j++) bad += e.out.a[j] < e.out.a[j + 1] || e.out.a[j + 1] < 0;
        CHECK_MSG(bad == 0, "singular values of %llu (%dx%d)", (unsigned long long)i, m, n);

        e = get(&svd, i);
        m = e.in.rows;
        n = e.in.cols;
        k = m < n ? m : n;
        CHECK(e.out.rows == 1 + m + n && e.out.cols == k);
        /* U diag(S) V^T rebuilds M; U and V have orthonormal columns. */
        double rebuild = 0, ortho = 0, norm = frobenius(&e.in);
        for (int r = 0; r < m; r++)
            for (int c = 0; c < n; c++) {
                double s = 0;
                for (int j = 0; j < k; j++)
                    s += MAT(&e.out, 1 + r, j) * e.out.a[j] * MAT(&e.out, 1 + m + c, j);
                rebuild = fmax(rebuild, fabs(s - MAT(&e.in, r, c)));
            }
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) {
                double du = 0, dv = 0;
                for (int r = 0; r < m; r++) du += MAT(&e.out, 1 + r, a) * MAT(&e.out, 1 + r, b);
                for (int c = 0; c < n; c++)
                    dv += MAT(&e.out, 1 + m + c, a) * MAT(&e.out, 1 + m + c, b);
                ortho = fmax(ortho, fmax(fabs(du - (a == b)), fabs(dv - (a == b))));
            }
        CHECK_MSG(rebuild <= 1e-10 * norm, "U S V^T misses M of %llu by %g", (unsigned long long)i,
                  rebuild);
        CHECK_MSG(ortho <= 1e-12, "U^T U or V^T V of %llu is off Id by %g", (unsigned long long)i,
                  ortho);
        for (int j = 0; j < k; j++) bad += !column_sign_ok(&e.out, 1, m, j);
        CHECK_MSG(bad == 0, "U signs of %llu", (unsigned long long)i);
    }
}

/* max |P I - Id| */
static double inverse_error(const example *e)
{
    int n = e->in.rows;
    double err = 0;
    for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += MAT(&e->out, r, k) * MAT(&e->in, k, c);
            err = fmax(err, fabs(s - (r == c)));
        }
    return err;
}

static void test_inversion(void)
{
    datagen_config inv = config("inversion", "1-10", NULL, 0);
    for (uint64_t i = 0; i < N_EXAMPLES; i++) {
        example e = get(&inv, i);
        double err = inverse_error(&e);
        CHECK_MSG(err <= 1e-8, "P I - Id of %llu is %g", (unsigned long long)i, err);
    }
    /* One significant digit on 2x2 inputs: singular draws are frequent and must be redrawn. */
    inv = config("inversion", "2", NULL, 0);
    inv.in_digits = 1;
    int redraws = 0, bad = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        example e = get(&inv, i);
        redraws += e.redraws;
        bad += inverse_error(&e) > 1e-8;
    }
    CHECK_MSG(redraws > 0 && bad == 0, "singular 2x2 redraws %d, wrong inverses %d", redraws, bad);
}

static void test_rounding(void)
{
    for (int t = 0; t < LAWT_TASK_COUNT; t++) {
        for (int digits = 2; digits <= 4; digits++) {
            datagen_config cfg = config(task_name((lawt_task)t), "5", NULL, digits);
            int bad = 0;
            for (uint64_t i = 0; i < 50; i++) {
                example e = get(&cfg, i);
                for (int k = 0; k < e.in.rows * e.in.cols; k++)
                    bad += e.in.a[k] != round_significant(e.in.a[k], digits);
                for (int k = 0; k < e.out.rows * e.out.cols; k++)
                    bad += e.out.a[k] != round_significant(e.out.a[k], digits) ||
                           !isfinite(e.out.a[k]);
            }
            CHECK_MSG(bad == 0, "%s: %d coefficients not rounded to %d digits",
                      task_name((lawt_task)t), bad, digits);
        }
    }
    /* The output comes from the rounded input: Q D Q^T rebuilds it, not the raw draw. */
    datagen_config cfg = config("eigenvectors", "5", NULL, 0);
    cfg.in_digits = 2;
    example e = get(&cfg, 3);
    double rebuild = 0;
    for (int r = 0; r < 5; r++)
        for (int c = 0; c < 5; c++) {
            double s = 0;
            for (int k = 0; k < 5; k++)
                s += MAT(&e.out, 1 + r, k) * e.out.a[k] * MAT(&e.out, 1 + c, k);
            rebuild = fmax(rebuild, fabs(s - MAT(&e.in, r, c)));
        }
    CHECK_MSG(rebuild < 1e-11, "output not computed from the rounded input: %g", rebuild);
}

static void test_sizes(void)
{
    datagen_config cfg = config("eigenvalues", "5-15", NULL, 3);
    int seen[TEST_MAX + 1] = {0}, bad = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        example e = get(&cfg, i);
        bad += e.in.rows < 5 || e.in.rows > 15 || e.in.cols != e.in.rows || e.out.rows != e.in.rows;
        if (e.in.rows >= 5 && e.in.rows <= 15) seen[e.in.rows]++;
    }
    CHECK(bad == 0);
    for (int n = 5; n <= 15; n++)
        CHECK_MSG(seen[n] > 50, "size %d drawn %d times in 1000", n, seen[n]);
    cfg = config("svd", "3-4", "2-7", 3);
    int seen_rows[8] = {0}, seen_cols[8] = {0};
    for (uint64_t i = 0; i < 1000; i++) {
        example e = get(&cfg, i);
        int m = e.in.rows, n = e.in.cols;
        bad += m < 3 || m > 4 || n < 2 || n > 7;
        if (!bad) seen_rows[m]++, seen_cols[n]++;
    }
    CHECK(bad == 0);
    CHECK(seen_rows[3] > 0 && seen_rows[4] > 0);
    for (int n = 2; n <= 7; n++) CHECK_MSG(seen_cols[n] > 0, "dim2 %d never drawn", n);
    CHECK(datagen_max_output_coeffs(&cfg) == (size_t)(1 + 4 + 7) * 4);
}

static void test_noise(void)
{
    static const char *const TASKS[] = {"add", "eigenvalues", "inversion"};
    for (int t = 0; t < 3; t++) {
        datagen_config clean = config(TASKS[t], "5", NULL, 3), noisy = clean;
        noisy.noise = 0.05;
        double sum2 = 0;
        int count = 0, same_out = 0, diff_in = 0, asym = 0;
        for (uint64_t i = 0; i < 200; i++) {
            example c = get(&clean, i);
            double cin[4 * TEST_MAX * TEST_MAX], cout[4 * TEST_MAX * TEST_MAX];
            memcpy(cin, c.in.a, sizeof(double) * (size_t)c.in.rows * c.in.cols);
            memcpy(cout, c.out.a, sizeof(double) * (size_t)c.out.rows * c.out.cols);
            example e = get(&noisy, i);
            same_out +=
                memcmp(cout, e.out.a, sizeof(double) * (size_t)e.out.rows * e.out.cols) == 0;
            diff_in += memcmp(cin, e.in.a, sizeof(double) * (size_t)e.in.rows * e.in.cols) != 0;
            for (int k = 0; k < e.in.rows * e.in.cols; k++) {
                sum2 += (e.in.a[k] - cin[k]) * (e.in.a[k] - cin[k]);
                count++;
            }
            if (t == 1)
                for (int r = 0; r < 5; r++)
                    for (int s = 0; s < 5; s++) asym += MAT(&e.in, r, s) != MAT(&e.in, s, r);
        }
        CHECK_MSG(same_out == 200, "%s: noise changed %d outputs", TASKS[t], 200 - same_out);
        CHECK_MSG(diff_in == 200, "%s: noise left %d inputs unchanged", TASKS[t], 200 - diff_in);
        double std = sqrt(sum2 / count), want = 0.05 * 10 / sqrt(3.0);
        CHECK_MSG(fabs(std / want - 1) < 0.06, "%s: noise std %g, want %g", TASKS[t], std, want);
        CHECK(asym == 0);
    }
}

static void test_tokens(void)
{
    static const struct {
        const char *task, *dim, *dim2, *in_enc, *out_enc;
    } CASES[] = {
        {"transpose", "3", "4", "P10", "P10"},
        {"add,matmul,eigenvectors", "2-6", NULL, "P1000", "P1000"},
        {"svd", "4", "3", "B1999", "P1000"},
        {"inversion", "5", NULL, "FP15", "P1000"},
        {"eigenvalues", "5-8", NULL, "P10000", "P100"},
    };
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        datagen_config cfg = config(CASES[c].task, CASES[c].dim, CASES[c].dim2, 3);
        lawt_encoding ein, eout;
        CHECK(encoding_from_name(CASES[c].in_enc, &ein) == 0);
        CHECK(encoding_from_name(CASES[c].out_enc, &eout) == 0);
        cfg.in_digits = ein.digits;
        cfg.out_digits = eout.digits;
        lawt_vocab vin, vout;
        vocab_init(&vin, &ein);
        vocab_init(&vout, &eout);
        int src_cap = datagen_max_src_len(&cfg, &ein), tgt_cap = datagen_max_tgt_len(&cfg, &eout);
        int *src = malloc(sizeof(int) * (size_t)src_cap),
            *tgt = malloc(sizeof(int) * (size_t)tgt_cap);
        int task_tok = cfg.task_token, bad = 0;
        CHECK(task_tok == (strchr(CASES[c].task, ',') != NULL));
        for (uint64_t i = 0; i < 200; i++) {
            double ain[4 * TEST_MAX * TEST_MAX], aout[4 * TEST_MAX * TEST_MAX];
            double din[4 * TEST_MAX * TEST_MAX], dout[4 * TEST_MAX * TEST_MAX];
            lawt_matrix in = {0, 0, ain}, out = {0, 0, aout}, dec_in = {0, 0, din},
                        dec_out = {0, 0, dout};
            lawt_task task;
            int sl, tl;
            datagen_tokens(&cfg, &vin, &vout, 3, STREAM_TEST, i, src, &sl, tgt, &tl, &in, &out,
                           &task);
            bad += sl > src_cap || tl > tgt_cap || src[0] != TOK_EOS || src[sl - 1] != TOK_EOS ||
                   tgt[0] != TOK_EOS || tgt[tl - 1] != TOK_EOS;
            if (task_tok) bad += src[1] != vocab_task_token(&vin, task);
            int off = 1 + task_tok;
            bad += decode_matrix(&vin, src + off, sl - off - 1, &dec_in, 4 * TEST_MAX * TEST_MAX) !=
                   DECODE_OK;
            bad += decode_matrix(&vout, tgt + 1, tl - 2, &dec_out, 4 * TEST_MAX * TEST_MAX) !=
                   DECODE_OK;
            bad += dec_in.rows != in.rows || dec_in.cols != in.cols || dec_out.rows != out.rows ||
                   dec_out.cols != out.cols;
            bad += memcmp(din, ain, sizeof(double) * (size_t)in.rows * in.cols) != 0;
            bad += memcmp(dout, aout, sizeof(double) * (size_t)out.rows * out.cols) != 0;
            /* NULL matrices give the same sequences. */
            int src2[4096], tgt2[4096], sl2, tl2;
            datagen_tokens(&cfg, &vin, &vout, 3, STREAM_TEST, i, src2, &sl2, tgt2, &tl2, NULL, NULL,
                           NULL);
            bad += sl2 != sl || tl2 != tl || memcmp(src, src2, sizeof(int) * (size_t)sl) != 0 ||
                   memcmp(tgt, tgt2, sizeof(int) * (size_t)tl) != 0;
        }
        CHECK_MSG(bad == 0, "tokens of %s %s->%s: %d problems", CASES[c].task, CASES[c].in_enc,
                  CASES[c].out_enc, bad);
        free(src);
        free(tgt);
        vocab_free(&vin);
        vocab_free(&vout);
    }

    /* FP15 cannot write |x| < 1e-6: with coefficients in [-1e-5, 1e-5] about a tenth are out
     * of range, so most examples are redrawn, deterministically, until every value fits. */
    datagen_config cfg = config("transpose", "5", NULL, 3);
    cfg.bound = 1e-5;
    lawt_encoding fp;
    encoding_from_name("FP15", &fp);
    lawt_vocab v;
    vocab_init(&v, &fp);
    int redrawn = 0, bad = 0;
    for (uint64_t i = 0; i < 100; i++) {
        double a[25], b[25], raw[25], rawo[25];
        lawt_matrix in = {0, 0, a}, out = {0, 0, b}, rin = {0, 0, raw}, rout = {0, 0, rawo};
        int src[128], tgt[128], sl, tl, src2[128], tgt2[128], sl2, tl2;
        datagen_tokens(&cfg, &v, &v, 1, STREAM_TRAIN, i, src, &sl, tgt, &tl, &in, &out, NULL);
        datagen_tokens(&cfg, &v, &v, 1, STREAM_TRAIN, i, src2, &sl2, tgt2, &tl2, NULL, NULL, NULL);
        datagen_example(&cfg, 1, STREAM_TRAIN, i, &rin, &rout, NULL);
        redrawn += memcmp(a, raw, sizeof a) != 0;
        for (int k = 0; k < 25; k++) bad += fabs(a[k]) < 1e-6;
        bad += sl != sl2 || memcmp(src, src2, sizeof(int) * (size_t)sl) != 0;
    }
    CHECK_MSG(bad == 0 && redrawn > 80, "FP15 range redraws: %d redrawn, %d problems", redrawn,
              bad);
    vocab_free(&v);
}

/* task_token 2 (Appendix F.2): the target starts with the task's token too, one token longer
 * than with task_token 1, and datagen_decode_output reads its matrix only after the right
 * task's token. */
static void test_output_task_token(void)
{
    datagen_config one = config("add,matmul,eigenvalues", "2-4", NULL, 3), two = one;
    CHECK(one.task_token == 1);
    char err[256];
    CHECK(datagen_set(&two, "task_token", "2", err, sizeof err) == 0 && two.task_token == 2);
    lawt_encoding enc;
    encoding_from_name("P1000", &enc);
    lawt_vocab v;
    vocab_init(&v, &enc);
    CHECK(datagen_max_tgt_len(&two, &enc) == datagen_max_tgt_len(&one, &enc) + 1);
    CHECK(datagen_max_src_len(&two, &enc) == datagen_max_src_len(&one, &enc));
    int bad = 0, seen[LAWT_TASK_COUNT] = {0};
    for (uint64_t i = 0; i < 60; i++) {
        int s1[256], t1[256], s2[256], t2[256], sl1, tl1, sl2, tl2;
        double a[64], b[64], d[64];
        lawt_matrix in = {0, 0, a}, out = {0, 0, b}, dec = {0, 0, d};
        lawt_task task, other;
        datagen_tokens(&one, &v, &v, 5, STREAM_TEST, i, s1, &sl1, t1, &tl1, NULL, NULL, NULL);
        datagen_tokens(&two, &v, &v, 5, STREAM_TEST, i, s2, &sl2, t2, &tl2, &in, &out, &task);
        seen[task]++;
        bad += sl1 != sl2 || memcmp(s1, s2, sizeof(int) * (size_t)sl1) != 0 || tl2 != tl1 + 1;
        bad += t2[1] != vocab_task_token(&v, task) || memcmp(t2 + 2, t1 + 1, sizeof(int) * (size_t)(tl1 - 1)) != 0;
        /* decoding what the model predicts: the tokens between the two EOS */
        bad += datagen_decode_output(&two, &v, task, t2 + 1, tl2 - 2, &dec, 64) != DECODE_OK;
        bad += dec.rows != out.rows || dec.cols != out.cols ||
               memcmp(d, b, sizeof(double) * (size_t)out.rows * out.cols) != 0;
        other = task == TASK_ADD ? TASK_MATMUL : TASK_ADD;
        bad += datagen_decode_output(&two, &v, other, t2 + 1, tl2 - 2, &dec, 64) != DECODE_MALFORMED;
        bad += datagen_decode_output(&two, &v, task, t2 + 2, tl2 - 3, &dec, 64) != DECODE_MALFORMED;
        bad += datagen_decode_output(&one, &v, task, t1 + 1, tl1 - 2, &dec, 64) != DECODE_OK;
    }
    CHECK_MSG(bad == 0, "task_token 2: %d problems", bad);
    CHECK(seen[TASK_ADD] > 0 && seen[TASK_MATMUL] > 0 && seen[TASK_EIGENVALUES] > 0);
    vocab_free(&v);
}

int main(void)
{
    test_shapes();
    test_transpose_add();
    test_matvec_matmul();
    test_eigen();
    test_singular();
    test_inversion();
    test_rounding();
    test_sizes();
    test_noise();
    test_tokens();
    test_output_task_token();
    return test_report("test_datagen_tasks");
}
