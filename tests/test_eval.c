/* test_eval: for every task, a correct answer computed with LAPACKE/CBLAS passes, and the same
 * answer perturbed to a relative error of 0.9 tau passes while 1.1 tau fails, in each norm;
 * wrong shapes, tallies, and condition numbers. */
#include "eval/eval.h"
#include "tests/test.h"

#include <cblas.h>
#include <lapacke.h>
#include <string.h>

static const double TAUS[] = {0.05, 0.02, 0.01, 0.005};
#define NTAU 4
#define MAXN 16

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static double rng_uniform(void) /* xorshift64* in [-1, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) * 0x1p-52 - 1.0;
}

static void fill(lawt_matrix *m, int rows, int cols, double *buf)
{
    m->rows = rows;
    m->cols = cols;
    m->a = buf;
    for (int i = 0; i < rows * cols; i++) buf[i] = 10.0 * rng_uniform();
}

/* The test's own norms, written independently of eval.c. */
static double norm_of(const double *a, int n, lawt_norm norm)
{
    double r = 0;
    for (int i = 0; i < n; i++) {
        if (norm == NORM_L1) r += fabs(a[i]);
        else if (norm == NORM_L2) r += a[i] * a[i];
        else r = fmax(r, fabs(a[i]));
    }
    return r; /* L2: the paper's sum of squares, no square root */
}

/* The t with |t E| = ratio |O|: L2 (a sum of squares) grows as t^2, L1 and Linf as t. */
static double scale_to(double ratio, double o_norm, double e_norm, lawt_norm norm)
{
    double s = ratio * o_norm / e_norm;
    return norm == NORM_L2 ? sqrt(s) : s;
}

/* A problem with its correct output. */
typedef struct {
    lawt_task task;
    lawt_matrix in, out;
    double in_buf[MAXN * MAXN], out_buf[(2 * MAXN + 1) * MAXN];
} problem;

static void make_symmetric(lawt_matrix *m, int n, double *buf)
{
    fill(m, n, n, buf);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) MAT(m, i, j) = MAT(m, j, i);
}

static void make_problem(problem *p, lawt_task task, int m, int n)
{
    p->task = task;
    p->out.a = p->out_buf;
    lawt_matrix *in = &p->in, *out = &p->out;
    switch (task) {
    case TASK_TRANSPOSE:
        fill(in, m, n, p->in_buf);
        out->rows = n, out->cols = m;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) MAT(out, j, i) = MAT(in, i, j);
        break;
    case TASK_ADD:
        fill(in, m, 2 * n, p->in_buf);
        out->rows = m, out->cols = n;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) MAT(out, i, j) = MAT(in, i, j) + MAT(in, i, n + j);
        break;
    case TASK_MATVEC: /* [M | v], M^T v */
        fill(in, m, n + 1, p->in_buf);
        out->rows = n, out->cols = 1;
        cblas_dgemv(CblasRowMajor, CblasTrans, m, n, 1.0, in->a, n + 1, in->a + n, n + 1, 0.0, out->a, 1);
        break;
    case TASK_MATMUL: /* [M | N], M^T N */
        fill(in, m, 2 * n, p->in_buf);
        out->rows = n, out->cols = n;
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, m, 1.0, in->a, 2 * n, in->a + n, 2 * n,
                    0.0, out->a, n);
        break;
    case TASK_EIGENVALUES:
    case TASK_EIGENVECTORS: {
        make_symmetric(in, n, p->in_buf);
        double q[MAXN * MAXN], w[MAXN];
        memcpy(q, in->a, sizeof(double) * n * n);
        CHECK(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', n, q, n, w) == 0);
        /* dsyevd sorts ascending; the task wants descending, eigenvectors in columns. */
        out->rows = task == TASK_EIGENVALUES ? n : n + 1;
        out->cols = task == TASK_EIGENVALUES ? 1 : n;
        for (int j = 0; j < n; j++) {
            out->a[j] = w[n - 1 - j];
            if (task == TASK_EIGENVECTORS)
                for (int i = 0; i < n; i++) out->a[(1 + i) * n + j] = q[i * n + (n - 1 - j)];
        }
        break;
    }
    case TASK_SINGULARVALUES:
    case TASK_SVD: {
        fill(in, m, n, p->in_buf);
        int k = m < n ? m : n;
        double a[MAXN * MAXN], s[MAXN], u[MAXN * MAXN], vt[MAXN * MAXN], superb[MAXN];
        memcpy(a, in->a, sizeof(double) * m * n);
        CHECK(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'S', m, n, a, n, s, u, k, vt, n, superb) == 0);
        out->rows = task == TASK_SINGULARVALUES ? k : 1 + m + n;
        out->cols = task == TASK_SINGULARVALUES ? 1 : k;
        for (int j = 0; j < k; j++) out->a[j] = s[j];
        if (task == TASK_SVD) {
            for (int i = 0; i < m; i++)
                for (int j = 0; j < k; j++) out->a[(1 + i) * k + j] = u[i * k + j];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < k; j++) out->a[(1 + m + i) * k + j] = vt[j * n + i];
        }
        break;
    }
    case TASK_INVERSION: {
        fill(in, n, n, p->in_buf);
        lapack_int ipiv[MAXN];
        out->rows = n, out->cols = n;
        memcpy(out->a, in->a, sizeof(double) * n * n);
        CHECK(LAPACKE_dgetrf(LAPACK_ROW_MAJOR, n, n, out->a, n, ipiv) == 0);
        CHECK(LAPACKE_dgetri(LAPACK_ROW_MAJOR, n, out->a, n, ipiv) == 0);
        break;
    }
    default: break;
    }
}

/* Checks that pred's error in `norm` is `want` (a known perturbation) and that it passes at
 * tau exactly when want < tau. */
static void expect_error(const problem *p, const lawt_matrix *pred, lawt_norm norm, double want,
                         double tau, int should_pass, const char *how)
{
    double err[LAWT_NORM_COUNT];
    CHECK(eval_relative_error(p->task, &p->in, &p->out, pred, err) == 0);
    CHECK_MSG(fabs(err[norm] - want) <= 1e-6 * want, "%s %s %s: err %.12g, want %.12g", task_name(p->task),
              norm_name(norm), how, err[norm], want);
    CHECK_MSG(eval_passes(p->task, err[norm], tau) == should_pass, "%s %s %s tau %g: err %.6g",
              task_name(p->task), norm_name(norm), how, tau, err[norm]);
}

/* Direct tasks: P = O + t E with t chosen so |t E| = f tau |O| in the norm. */
static void check_direct(const problem *p)
{
    int count = p->out.rows * p->out.cols;
    double e[(2 * MAXN + 1) * MAXN], buf[(2 * MAXN + 1) * MAXN];
    for (int i = 0; i < count; i++) e[i] = rng_uniform();
    lawt_matrix pred = {p->out.rows, p->out.cols, buf};
    for (int norm = 0; norm < LAWT_NORM_COUNT; norm++)
        for (int t = 0; t < NTAU; t++)
            for (int below = 0; below < 2; below++) {
                double f = below ? 0.9 : 1.1;
                double scale = scale_to(f * TAUS[t], norm_of(p->out.a, count, norm), norm_of(e, count, norm), norm);
                for (int i = 0; i < count; i++) buf[i] = p->out.a[i] + scale * e[i];
                expect_error(p, &pred, norm, f * TAUS[t], TAUS[t], below, "O + tE");
            }
}

/* Inversion: P = M^-1 + t E, so P M - Id = t E M, and |Id| is n, n, 1. */
static void check_inversion(const problem *p)
{
    int n = p->in.rows;
    double e[MAXN * MAXN], em[MAXN * MAXN], buf[MAXN * MAXN];
    for (int i = 0; i < n * n; i++) e[i] = rng_uniform();
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            em[i * n + j] = 0;
            for (int k = 0; k < n; k++) em[i * n + j] += e[i * n + k] * p->in.a[k * n + j];
        }
    const double id_norm[LAWT_NORM_COUNT] = {n, n, 1};
    lawt_matrix pred = {n, n, buf};
    for (int norm = 0; norm < LAWT_NORM_COUNT; norm++)
        for (int t = 0; t < NTAU; t++)
            for (int below = 0; below < 2; below++) {
                double f = below ? 0.9 : 1.1;
                double scale = scale_to(f * TAUS[t], id_norm[norm], norm_of(em, n * n, norm), norm);
                for (int i = 0; i < n * n; i++) buf[i] = p->out.a[i] + scale * e[i];
                expect_error(p, &pred, norm, f * TAUS[t], TAUS[t], below, "inverse + tE");
            }
}

/* Decompositions [d ; A ; B] with A^T I B = diag(d): two perturbations of known error.
 * (1) Scaling U by 1 + s, or Q by sqrt(1 + s) (it is both A and B), scales A^T I B by 1 + s,
 *     so the error is s (s^2 in the paper's L2: s = sqrt(r) for an error r).
 * (2) d + t E: the residual is -t E, the error t|E| / |d + t E|, solved for t by bisection. */
static void check_decomposition(const problem *p)
{
    int k = p->out.cols, count = p->out.rows * k;
    int first_rows = p->task == TASK_SVD ? p->in.rows : k; /* rows of U, or of Q */
    double buf[(2 * MAXN + 1) * MAXN], e[MAXN], d[MAXN];
    lawt_matrix pred = {p->out.rows, k, buf};
    for (int j = 0; j < k; j++) e[j] = rng_uniform();
    for (int norm = 0; norm < LAWT_NORM_COUNT; norm++)
        for (int t = 0; t < NTAU; t++)
            for (int below = 0; below < 2; below++) {
                double f = below ? 0.9 : 1.1, r = f * TAUS[t];
                double s = norm == NORM_L2 ? sqrt(r) : r;
                memcpy(buf, p->out.a, sizeof(double) * count);
                double factor = p->task == TASK_SVD ? 1 + s : sqrt(1 + s);
                for (int i = k; i < (1 + first_rows) * k; i++) buf[i] *= factor;
                expect_error(p, &pred, norm, r, TAUS[t], below, "scaled factor");

                double lo = 0, hi = 1e3;
                for (int it = 0; it < 100; it++) {
                    double mid = 0.5 * (lo + hi);
                    for (int j = 0; j < k; j++) d[j] = p->out.a[j] + mid * e[j];
                    double step = norm == NORM_L2 ? mid * mid : mid;
                    if (step * norm_of(e, k, norm) / norm_of(d, k, norm) < r) lo = mid;
                    else hi = mid;
                }
                memcpy(buf, p->out.a, sizeof(double) * count);
                for (int j = 0; j < k; j++) buf[j] += lo * e[j];
                expect_error(p, &pred, norm, r, TAUS[t], below, "d + tE");
            }
}

static void test_tasks(void)
{
    static const int shapes[][2] = {{5, 5}, {3, 7}, {7, 3}, {1, 4}, {10, 10}};
    for (int task = 0; task < LAWT_TASK_COUNT; task++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            problem p;
            make_problem(&p, task, shapes[s][0], shapes[s][1]);
            double err[LAWT_NORM_COUNT];
            CHECK_MSG(eval_relative_error(task, &p.in, &p.out, &p.out, err) == 0, "%s", task_name(task));
            for (int norm = 0; norm < LAWT_NORM_COUNT; norm++) {
                CHECK_MSG(err[norm] < 1e-12, "%s %dx%d %s: exact answer has error %g", task_name(task),
                          p.in.rows, p.in.cols, norm_name(norm), err[norm]);
                CHECK(eval_passes(task, err[norm], 1e-10) == (task != TASK_TRANSPOSE || err[norm] == 0));
            }
            if (task == TASK_TRANSPOSE) {
                /* Exact only: one coefficient off by a relative 1e-12 fails at any tolerance. */
                CHECK(err[NORM_L1] == 0 && eval_passes(task, 0.0, 0.0));
                double copy[MAXN * MAXN];
                memcpy(copy, p.out.a, sizeof(double) * p.out.rows * p.out.cols);
                copy[0] *= 1 + 1e-12;
                lawt_matrix pred = {p.out.rows, p.out.cols, copy};
                CHECK(eval_relative_error(task, &p.in, &p.out, &pred, err) == 0);
                CHECK(err[NORM_L1] > 0 && !eval_passes(task, err[NORM_L1], 0.5));
            } else if (task == TASK_EIGENVECTORS || task == TASK_SVD) {
                check_decomposition(&p);
            } else if (task == TASK_INVERSION) {
                check_inversion(&p);
            } else {
                check_direct(&p);
            }

            /* One row too many, or too few: -1, +Inf, never passes. */
            for (int dr = -1; dr <= 1; dr += 2) {
                lawt_matrix bad = {p.out.rows + dr, p.out.cols, p.out.a};
                CHECK(eval_relative_error(task, &p.in, &p.out, &bad, err) == -1);
                CHECK(isinf(err[NORM_L1]) && isinf(err[NORM_L2]) && isinf(err[NORM_LINF]));
                CHECK(!eval_passes(task, err[NORM_L1], 1e9));
            }
        }

    /* Inputs that cannot be a problem of the task. */
    double a[16] = {0};
    lawt_matrix odd = {2, 3, a}, out = {2, 1, a};
    double err[LAWT_NORM_COUNT];
    CHECK(eval_relative_error(TASK_ADD, &odd, &out, &out, err) == -1);
    CHECK(eval_relative_error(TASK_INVERSION, &odd, &out, &out, err) == -1);
    /* The all-zero answer to an all-zero sum is right; a zero decomposition never is. */
    lawt_matrix zin = {2, 4, a}, zout = {2, 2, a}, zdec = {3, 2, a}, zsq = {2, 2, a};
    CHECK(eval_relative_error(TASK_ADD, &zin, &zout, &zout, err) == 0 && err[NORM_L1] == 0);
    CHECK(eval_relative_error(TASK_EIGENVECTORS, &zsq, NULL, &zdec, err) == 0 && isinf(err[NORM_L1]));
    /* A wild prediction overflows: +Inf, not NaN. */
    double big[6] = {1e300, 1e300, 1e300, -1e300, 1e300, 1e300}, sym[4] = {1e300, 1e300, 1e300, 1e300};
    lawt_matrix wild = {3, 2, big}, wild_in = {2, 2, sym};
    CHECK(eval_relative_error(TASK_EIGENVECTORS, &wild_in, NULL, &wild, err) == 0);
    CHECK(isinf(err[NORM_L1]) && isinf(err[NORM_L2]) && isinf(err[NORM_LINF]));
    CHECK(strcmp(norm_name(NORM_LINF), "Linf") == 0 && strcmp(norm_name(NORM_L1), "L1") == 0);
}

/* P = (1 + c) O for the add task has relative error c in L1 and Linf, c^2 in the paper's L2. */
static void add_scaled(eval_tally *t, const problem *p, double c, int rows_delta)
{
    double buf[MAXN * MAXN];
    int count = p->out.rows * p->out.cols;
    for (int i = 0; i < count; i++) buf[i] = (1 + c) * p->out.a[i];
    lawt_matrix pred = {p->out.rows + rows_delta, p->out.cols, buf};
    eval_tally_add(t, TASK_ADD, &p->in, &p->out, &pred);
}

static void test_tally(void)
{
    problem p;
    make_problem(&p, TASK_ADD, 3, 3);
    const double tol[3] = {0.05, 0.02, 0.01};
    eval_tally all, first, second;
    eval_tally_init(&all, tol, 3);
    eval_tally_init(&first, tol, 3);
    eval_tally_init(&second, tol, 3);
    /* 4 exact, 3 at 3%, 2 at 1.5%, 1 not decoded, 1 with the wrong shape. */
    const double cs[] = {0, 0, 0, 0, 0.03, 0.03, 0.03, 0.015, 0.015};
    for (int i = 0; i < 9; i++) {
        add_scaled(&all, &p, cs[i], 0);
        add_scaled(i < 5 ? &first : &second, &p, cs[i], 0);
    }
    eval_tally_add(&all, TASK_ADD, &p.in, &p.out, NULL);
    eval_tally_add(&second, TASK_ADD, &p.in, &p.out, NULL);
    add_scaled(&all, &p, 0, 1);
    add_scaled(&second, &p, 0, 1);
    CHECK(all.count == 11 && all.well_formed == 9);
    for (int norm = 0; norm < LAWT_NORM_COUNT; norm++) {
        if (norm == NORM_L2) continue;
        CHECK_CLOSE(eval_tally_accuracy(&all, norm, 0), 100.0 * 9 / 11, 1e-12);
        CHECK_CLOSE(eval_tally_accuracy(&all, norm, 1), 100.0 * 6 / 11, 1e-12);
        CHECK_CLOSE(eval_tally_accuracy(&all, norm, 2), 100.0 * 4 / 11, 1e-12);
        CHECK_CLOSE(all.err_sum[norm], 3 * 0.03 + 2 * 0.015, 1e-12);
    }
    /* Errors 0.0009 and 0.000225 in the paper's L2: every well-formed prediction passes 1%
     * (the Frobenius check would fail the 3% ones there). */
    for (int k = 0; k < 3; k++) CHECK_CLOSE(eval_tally_accuracy(&all, NORM_L2, k), 100.0 * 9 / 11, 1e-12);
    CHECK_CLOSE(all.err_sum[NORM_L2], 3 * 0.03 * 0.03 + 2 * 0.015 * 0.015, 1e-12);
    eval_tally_merge(&first, &second);
    CHECK(first.count == all.count && first.well_formed == all.well_formed);
    CHECK(memcmp(first.pass, all.pass, sizeof all.pass) == 0);
    CHECK_CLOSE(first.err_sum[NORM_L2], all.err_sum[NORM_L2], 1e-12);
    CHECK(eval_tally_accuracy(&all, NORM_L1, 3) == 0.0); /* no such tolerance */
    eval_tally empty;
    eval_tally_init(&empty, tol, 1);
    CHECK(eval_tally_accuracy(&empty, NORM_L1, 0) == 0.0);
}

static void test_condition(void)
{
    double d[9] = {1, 0, 0, 0, 2, 0, 0, 0, 10};
    lawt_matrix m = {3, 3, d};
    CHECK_CLOSE(eval_condition_number(&m), 10.0, 1e-12);
    CHECK(d[8] == 10 && d[4] == 2); /* the input is left alone */
    double rect[6] = {3, 0, 0, 1, 0, 0};
    lawt_matrix r = {3, 2, rect}, rt = {2, 3, rect};
    CHECK_CLOSE(eval_condition_number(&r), 3.0, 1e-12);
    rect[1] = 0, rect[2] = 0, rect[3] = 0, rect[4] = 1, rect[5] = 0; /* rows (3,0,0), (0,1,0) */
    CHECK_CLOSE(eval_condition_number(&rt), 3.0, 1e-12);
    double sing[4] = {1, 0, 0, 0};
    lawt_matrix s = {2, 2, sing};
    CHECK(isinf(eval_condition_number(&s)));
    double c = cos(0.3), sn = sin(0.3);
    double rot[4] = {c, -sn, sn, c};
    lawt_matrix q = {2, 2, rot};
    CHECK_CLOSE(eval_condition_number(&q), 1.0, 1e-12);

    /* [D ; Q]: a rotation has condition 1, Q = diag(1, 4) has 4, a bad shape is +Inf. */
    double pred[6] = {5, -2, c, -sn, sn, c};
    lawt_matrix pm = {3, 2, pred};
    CHECK_CLOSE(eval_eigenvectors_q_condition(&pm), 1.0, 1e-12);
    double pred2[6] = {5, -2, 1, 0, 0, 4};
    lawt_matrix pm2 = {3, 2, pred2}, bad = {2, 3, pred2};
    CHECK_CLOSE(eval_eigenvectors_q_condition(&pm2), 4.0, 1e-12);
    CHECK(isinf(eval_eigenvectors_q_condition(&bad)));

    /* A real eigen decomposition: Q orthogonal to rounding. */
    problem p;
    make_problem(&p, TASK_EIGENVECTORS, 6, 6);
    CHECK_CLOSE(eval_eigenvectors_q_condition(&p.out), 1.0, 1e-10);
}

/* The checks of sections 4.5-4.6 beside the paper's, and the --dump line of an example. */
static void test_failure_analysis(void)
{
    /* Inversion: |P - M^-1| / |M^-1| beside |PM - Id| / |Id|. M = diag(1, 2, 4), P its inverse
     * but 0.3 for 0.25: |P - M^-1|_1 = 0.05 over 1.75; PM - Id has 0.2 for 1.2 - 1 over 3. */
    double m[9] = {1, 0, 0, 0, 2, 0, 0, 0, 4}, inv[9] = {1, 0, 0, 0, 0.5, 0, 0, 0, 0.25};
    double pv[9] = {1, 0, 0, 0, 0.5, 0, 0, 0, 0.3};
    lawt_matrix in = {3, 3, m}, target = {3, 3, inv}, pred = {3, 3, pv};
    double direct[LAWT_NORM_COUNT], paper[LAWT_NORM_COUNT];
    CHECK(eval_direct_error(&target, &pred, direct) == 0);
    CHECK_CLOSE(direct[NORM_L1], 0.05 / 1.75, 1e-15);
    CHECK_CLOSE(direct[NORM_L2], 0.05 * 0.05 / (1 + 0.25 + 0.0625), 1e-15);
    CHECK_CLOSE(direct[NORM_LINF], 0.05 / 1.0, 1e-15);
    CHECK(eval_relative_error(TASK_INVERSION, &in, &target, &pred, paper) == 0);
    CHECK_CLOSE(paper[NORM_L1], 0.2 / 3.0, 1e-15);
    lawt_matrix wrong = {1, 9, pv};
    CHECK(eval_direct_error(&target, &wrong, direct) < 0 && isinf(direct[NORM_L1]));

    /* Its --dump line: LAPACK's condition number 4, both errors, pass and fail. */
    double tol[2] = {0.05, 0.1};
    char buf[4096];
    lawt_text t = {buf, sizeof buf, 0};
    CHECK(eval_example_json_size(&in, &target) < sizeof buf);
    eval_example_json(&t, TASK_INVERSION, &in, &target, &pred, tol, 2);
    CHECK_MSG(strstr(buf, "\"cond\":4,") != NULL, "%s", buf);
    CHECK_MSG(strstr(buf, "\"prediction\":[[1,0,0],[0,0.5,0],[0,0,0.3]]") != NULL, "%s", buf);
    CHECK_MSG(strstr(buf, "\"error\":{\"L1\":0.0666666667,") != NULL, "%s", buf);
    CHECK_MSG(strstr(buf, "\"inverse_error\":{\"L1\":0.0285714286,") != NULL, "%s", buf);
    CHECK_MSG(strstr(buf, "\"pass\":{\"L1\":{\"5\":false,\"10\":true}") != NULL, "%s", buf);
    t = (lawt_text){buf, sizeof buf, 0};
    eval_example_json(&t, TASK_INVERSION, &in, &target, NULL, tol, 2);
    CHECK_MSG(strstr(buf, "\"prediction\":null,\"well_formed\":false,\"error\":null") != NULL &&
              strstr(buf, "\"inverse_error\":null") != NULL, "%s", buf);

    /* Eigenvectors: a real decomposition (LAPACK) predicts its eigenvalues exactly, and so do
     * the Rayleigh quotients of its Q; D off by 10% is a predicted-eigenvalue error of 0.1
     * while Q still implies the right ones. */
    problem p;
    make_problem(&p, TASK_EIGENVECTORS, 5, 5);
    double predicted[LAWT_NORM_COUNT], implied[LAWT_NORM_COUNT];
    CHECK(eval_eigenvalue_errors(&p.in, &p.out, &p.out, predicted, implied) == 0);
    CHECK(predicted[NORM_L1] == 0.0);
    CHECK_MSG(implied[NORM_L1] < 1e-12, "implied eigenvalues off by %g", implied[NORM_L1]);
    double off[6 * 5];
    memcpy(off, p.out.a, sizeof off);
    for (int j = 0; j < 5; j++) off[j] *= 1.1;
    lawt_matrix poff = {6, 5, off};
    CHECK(eval_eigenvalue_errors(&p.in, &p.out, &poff, predicted, implied) == 0);
    CHECK_CLOSE(predicted[NORM_L1], 0.1, 1e-12);
    CHECK_CLOSE(predicted[NORM_L2], 0.01, 1e-12);
    CHECK(implied[NORM_L1] < 1e-12);
    /* Q's columns scaled (2, 1, 1, 1, 1): the Rayleigh quotients do not change, the condition
     * number of Q is 2. */
    for (int i = 0; i < 5; i++) off[5 + 5 * i] *= 2.0;
    CHECK(eval_eigenvalue_errors(&p.in, &p.out, &poff, predicted, implied) == 0);
    CHECK(implied[NORM_L1] < 1e-12);
    t = (lawt_text){buf, sizeof buf, 0};
    eval_example_json(&t, TASK_EIGENVECTORS, &p.in, &p.out, &poff, tol, 2);
    size_t len = strlen(buf), want = strlen("\"q_cond\":2");
    CHECK_MSG(len > want && strcmp(buf + len - want, "\"q_cond\":2") == 0, "%s", buf);
    lawt_matrix short_pred = {5, 5, off};
    CHECK(eval_eigenvalue_errors(&p.in, &p.out, &short_pred, predicted, implied) < 0 &&
          isinf(predicted[NORM_L1]) && isinf(implied[NORM_L1]));
}

int main(void)
{
    test_tasks();
    test_tally();
    test_condition();
    test_failure_analysis();
    return test_report("test_eval");
}
