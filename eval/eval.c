/* eval.c: relative errors of predictions (Appendix B), condition numbers, accuracy tallies.
 *
 * A zero denominator |O| (or |diag(D)|, |diag(S)|) gives error 0 when the residual is exactly
 * zero for the direct tasks (the all-zero answer to an all-zero problem is right), and +Inf
 * otherwise: in particular a predicted decomposition with D = 0 never passes, as the paper's
 * strict inequality |Q^T I Q - D| < tau |D| says. Overflow or NaN in the residual of a wild
 * prediction is +Inf too, so every error is either a finite number or +Inf. */
#include "eval/eval.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

ENUM_TABLE_DEFINE(NORM_TABLE, LAWT_NORMS);

const char *norm_name(lawt_norm norm) { return enum_name(&NORM_TABLE, norm); }

static void norms(const double *a, size_t n, double out[LAWT_NORM_COUNT])
{
    double l1 = 0, l2 = 0, linf = 0;
    for (size_t i = 0; i < n; i++) {
        double x = fabs(a[i]);
        l1 += x;
        l2 += x * x;
        if (x > linf) linf = x;
    }
    out[NORM_L1] = l1;
    out[NORM_L2] = l2; /* the paper's ||A|| = sum a_ij^2, no square root (Appendix B) */
    out[NORM_LINF] = linf;
}

static void set_all(double err[LAWT_NORM_COUNT], double value)
{
    for (int k = 0; k < LAWT_NORM_COUNT; k++) err[k] = value;
}

static void ratios(const double num[LAWT_NORM_COUNT], const double den[LAWT_NORM_COUNT],
                   int zero_over_zero_ok, double err[LAWT_NORM_COUNT])
{
    for (int k = 0; k < LAWT_NORM_COUNT; k++) {
        double e;
        if (den[k] == 0.0) e = (num[k] == 0.0 && zero_over_zero_ok) ? 0.0 : INFINITY;
        else e = num[k] / den[k];
        err[k] = isfinite(e) ? e : INFINITY;
    }
}

/* The shape of the task's output for this input; -1 when the input cannot be one. */
static int output_shape(lawt_task task, const lawt_matrix *in, int *rows, int *cols)
{
    int m, n;
    if (task < 0 || task >= LAWT_TASK_COUNT ||
        task_problem_of_input(task, in->rows, in->cols, &m, &n))
        return -1;
    task_output_shape(task, m, n, rows, cols);
    return 0;
}

/* |A^T I B - diag(d)| over |diag(d)| for the decompositions: A (ra x k) and B (rb x k) are
 * row blocks of the prediction, I is ra x rb. */
static void decomposition_error(const lawt_matrix *in, const double *d, const double *a,
                                const double *b, int k, double err[LAWT_NORM_COUNT])
{
    int ra = in->rows, rb = in->cols;
    double *ib = lawt_malloc((size_t)ra * (size_t)k * sizeof(double));
    double *r = lawt_malloc((size_t)k * (size_t)k * sizeof(double));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ra, k, rb, 1.0, in->a, rb, b, k, 0.0, ib, k);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, k, ra, 1.0, a, k, ib, k, 0.0, r, k);
    for (int i = 0; i < k; i++) r[(size_t)i * k + i] -= d[i];
    double num[LAWT_NORM_COUNT], den[LAWT_NORM_COUNT];
    norms(r, (size_t)k * k, num);
    norms(d, (size_t)k, den);
    ratios(num, den, 0, err);
    free(ib);
    free(r);
}

static void inversion_error(const lawt_matrix *in, const lawt_matrix *pred, double err[LAWT_NORM_COUNT])
{
    int n = in->rows;
    double *r = lawt_malloc((size_t)n * n * sizeof(double));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, pred->a, n, in->a, n, 0.0, r, n);
    for (int i = 0; i < n; i++) r[(size_t)i * n + i] -= 1.0;
    double num[LAWT_NORM_COUNT], den[LAWT_NORM_COUNT] = {n, n, 1.0};
    norms(r, (size_t)n * n, num);
    ratios(num, den, 0, err);
    free(r);
}

int eval_relative_error(lawt_task task, const lawt_matrix *input, const lawt_matrix *target,
                        const lawt_matrix *pred, double err[LAWT_NORM_COUNT])
{
    int rows, cols;
    set_all(err, INFINITY);
    if (output_shape(task, input, &rows, &cols) < 0 || pred->rows != rows || pred->cols != cols) return -1;
    int n = input->cols;
    switch (task) {
    case TASK_EIGENVECTORS: /* [D ; Q]: Q^T I Q - diag(D) */
        decomposition_error(input, pred->a, pred->a + n, pred->a + n, n, err);
        return 0;
    case TASK_SVD: { /* [S ; U ; V]: U^T I V - diag(S) */
        int k = cols;
        decomposition_error(input, pred->a, pred->a + k, pred->a + (size_t)(1 + input->rows) * k, k, err);
        return 0;
    }
    case TASK_INVERSION: inversion_error(input, pred, err); return 0;
    default: break;
    }
    return eval_direct_error(target, pred, err);
}

int eval_direct_error(const lawt_matrix *target, const lawt_matrix *pred,
                      double err[LAWT_NORM_COUNT])
{
    set_all(err, INFINITY);
    if (!target || !pred || target->rows != pred->rows || target->cols != pred->cols) return -1;
    size_t count = (size_t)target->rows * target->cols;
    double *diff = lawt_malloc(count * sizeof(double));
    for (size_t i = 0; i < count; i++) diff[i] = pred->a[i] - target->a[i];
    double num[LAWT_NORM_COUNT], den[LAWT_NORM_COUNT];
    norms(diff, count, num);
    norms(target->a, count, den);
    ratios(num, den, 1, err);
    free(diff);
    return 0;
}

int eval_eigenvalue_errors(const lawt_matrix *input, const lawt_matrix *target,
                           const lawt_matrix *pred, double predicted[LAWT_NORM_COUNT],
                           double implied[LAWT_NORM_COUNT])
{
    set_all(predicted, INFINITY);
    set_all(implied, INFINITY);
    int n = input->cols;
    if (input->rows != n || n < 1 || !pred || pred->rows != n + 1 || pred->cols != n ||
        !target || target->rows != n + 1 || target->cols != n)
        return -1;
    lawt_matrix truth = {1, n, target->a}, d = {1, n, pred->a};
    eval_direct_error(&truth, &d, predicted);
    /* q_j^T I q_j / q_j^T q_j: the eigenvalue of column j if it is an eigenvector */
    double *rayleigh = lawt_malloc((size_t)n * sizeof(double));
    const double *q = pred->a + n;
    for (int j = 0; j < n; j++) {
        double num = 0, den = 0;
        for (int i = 0; i < n; i++) {
            double iq = 0;
            for (int k = 0; k < n; k++) iq += input->a[(size_t)i * n + k] * q[(size_t)k * n + j];
            num += q[(size_t)i * n + j] * iq;
            den += q[(size_t)i * n + j] * q[(size_t)i * n + j];
        }
        rayleigh[j] = den > 0 ? num / den : INFINITY;
    }
    lawt_matrix r = {1, n, rayleigh};
    eval_direct_error(&truth, &r, implied);
    free(rayleigh);
    return 0;
}

int eval_passes(lawt_task task, double err, double tau)
{
    return task == TASK_TRANSPOSE ? err == 0.0 : err < tau;
}

double eval_condition_number(const lawt_matrix *m)
{
    int rows = m->rows, cols = m->cols, k = rows < cols ? rows : cols;
    if (rows < 1 || cols < 1) return INFINITY;
    size_t count = (size_t)rows * cols;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(m->a[i])) return INFINITY;
    /* dgesvd overwrites its input; the caller's matrix stays as it was. */
    double *a = lawt_malloc(count * sizeof(double));
    double *s = lawt_malloc((size_t)k * sizeof(double));
    double *superb = lawt_malloc((size_t)(k > 1 ? k : 2) * sizeof(double));
    memcpy(a, m->a, count * sizeof(double));
    lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', rows, cols, a, cols, s, NULL, 1, NULL, 1, superb);
    double c = (info != 0 || s[k - 1] == 0.0) ? INFINITY : s[0] / s[k - 1];
    free(a);
    free(s);
    free(superb);
    return isfinite(c) ? c : INFINITY;
}

double eval_eigenvectors_q_condition(const lawt_matrix *pred)
{
    int n = pred->cols;
    if (n < 1 || pred->rows != n + 1) return INFINITY;
    lawt_matrix q = {n, n, pred->a + n};
    return eval_condition_number(&q);
}

void eval_tally_init(eval_tally *t, const double *tol, int ntol)
{
    if (ntol < 1 || ntol > EVAL_MAX_TOLERANCES)
        lawt_die("eval_tally_init: %d tolerances (1 to %d allowed)", ntol, EVAL_MAX_TOLERANCES);
    memset(t, 0, sizeof *t);
    t->ntol = ntol;
    memcpy(t->tol, tol, (size_t)ntol * sizeof *tol);
}

void eval_tally_add(eval_tally *t, lawt_task task, const lawt_matrix *input,
                    const lawt_matrix *target, const lawt_matrix *pred)
{
    double err[LAWT_NORM_COUNT];
    int formed = pred && eval_relative_error(task, input, target, pred, err) == 0;
    eval_tally_add_error(t, task, formed ? err : NULL);
}

void eval_tally_add_error(eval_tally *t, lawt_task task, const double err[LAWT_NORM_COUNT])
{
    t->count++;
    if (!err) return;
    t->well_formed++;
    for (int k = 0; k < LAWT_NORM_COUNT; k++) {
        if (isfinite(err[k])) t->err_sum[k] += err[k];
        for (int j = 0; j < t->ntol; j++) t->pass[k][j] += eval_passes(task, err[k], t->tol[j]);
    }
}

void eval_tally_merge(eval_tally *a, const eval_tally *b)
{
    if (a->ntol != b->ntol || memcmp(a->tol, b->tol, (size_t)a->ntol * sizeof a->tol[0]) != 0)
        lawt_die("eval_tally_merge: tallies with different tolerances");
    a->count += b->count;
    a->well_formed += b->well_formed;
    for (int k = 0; k < LAWT_NORM_COUNT; k++) {
        a->err_sum[k] += b->err_sum[k];
        for (int j = 0; j < a->ntol; j++) a->pass[k][j] += b->pass[k][j];
    }
}

double eval_tally_accuracy(const eval_tally *t, lawt_norm norm, int tol_index)
{
    if (t->count == 0 || norm < 0 || norm >= LAWT_NORM_COUNT || tol_index < 0 || tol_index >= t->ntol)
        return 0.0;
    return 100.0 * (double)t->pass[norm][tol_index] / (double)t->count;
}

static void json_number(lawt_text *o, const char *fmt, double x)
{
    if (isfinite(x)) lawt_appendf(o, fmt, x);
    else lawt_appendf(o, "null");
}

static void json_matrix(lawt_text *o, const lawt_matrix *m)
{
    lawt_appendf(o, "[");
    for (int i = 0; i < m->rows; i++) {
        lawt_appendf(o, "%s[", i ? "," : "");
        for (int j = 0; j < m->cols; j++) {
            if (j) lawt_appendf(o, ",");
            json_number(o, "%.15g", MAT(m, i, j));
        }
        lawt_appendf(o, "]");
    }
    lawt_appendf(o, "]");
}

size_t eval_example_json_size(const lawt_matrix *input, const lawt_matrix *target)
{
    /* a coefficient is at most 22 characters ("-1.23456789012345e-100") and a comma */
    size_t coeffs = (size_t)input->rows * input->cols + 2 * (size_t)target->rows * target->cols;
    return 1024 + 24 * coeffs + 4 * (size_t)(input->rows + 2 * target->rows + 4);
}

void eval_example_json(lawt_text *out, lawt_task task, const lawt_matrix *input,
                       const lawt_matrix *target, const lawt_matrix *pred, const double *tol,
                       int ntol)
{
    double err[LAWT_NORM_COUNT];
    int formed = pred && eval_relative_error(task, input, target, pred, err) == 0;
    lawt_appendf(out, "\"task\":\"%s\",\"input\":", task_name(task));
    json_matrix(out, input);
    lawt_appendf(out, ",\"target\":");
    json_matrix(out, target);
    lawt_appendf(out, ",\"prediction\":");
    if (pred) json_matrix(out, pred);
    else lawt_appendf(out, "null");
    lawt_appendf(out, ",\"well_formed\":%s,\"error\":", formed ? "true" : "false");
    if (formed) {
        for (int k = 0; k < LAWT_NORM_COUNT; k++) {
            lawt_appendf(out, "%s\"%s\":", k ? "," : "{", norm_name((lawt_norm)k));
            json_number(out, "%.9g", err[k]);
        }
        lawt_appendf(out, "}");
    } else {
        lawt_appendf(out, "null");
    }
    lawt_appendf(out, ",\"pass\":");
    for (int k = 0; k < LAWT_NORM_COUNT; k++) {
        lawt_appendf(out, "%s\"%s\":{", k ? "," : "{", norm_name((lawt_norm)k));
        for (int j = 0; j < ntol; j++)
            lawt_appendf(out, "%s\"%g\":%s", j ? "," : "", 100.0 * tol[j],
                         formed && eval_passes(task, err[k], tol[j]) ? "true" : "false");
        lawt_appendf(out, "}");
    }
    lawt_appendf(out, "}");
    if (input->rows == input->cols) {
        lawt_appendf(out, ",\"cond\":");
        json_number(out, "%.9g", eval_condition_number(input));
    }
    if (task == TASK_EIGENVECTORS) {
        lawt_appendf(out, ",\"q_cond\":");
        json_number(out, "%.9g", formed ? eval_eigenvectors_q_condition(pred) : INFINITY);
    }
    if (task == TASK_INVERSION) {
        double direct[LAWT_NORM_COUNT];
        lawt_appendf(out, ",\"inverse_error\":");
        if (formed && eval_direct_error(target, pred, direct) == 0) {
            for (int k = 0; k < LAWT_NORM_COUNT; k++) {
                lawt_appendf(out, "%s\"%s\":", k ? "," : "{", norm_name((lawt_norm)k));
                json_number(out, "%.9g", direct[k]);
            }
            lawt_appendf(out, "}");
        } else {
            lawt_appendf(out, "null");
        }
    }
}
